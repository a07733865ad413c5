// The `tandem` command. Each subcommand lives in src/commands/<name>.ts and exports
// `run(argv: string[]): Promise<number>` (the exit code); they load lazily so `generate`
// never pays for the router's imports.
const commands: Record<string, string> = {
  generate: 'run a checkpoint on token ids and print the generated ids',
  score: 'print log p(ids[i+1] | ids[0..i]) for a sequence of ids',
  worker: 'start a worker (--role unified|prefill|decode)',
  router: 'start the OpenAI-compatible router',
  planner: 'scale the prefill and decode Deployments of a Kubernetes cluster',
  up: 'bring up NATS, Redis, the router and workers on this machine',
  bench: 'load-generate against an OpenAI-compatible endpoint, compare results',
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, what]) => `  ${name.padEnd(10)}${what}`);
  return `usage: tandem <command> [options]\n\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || !(name in commands)) {
    process.stderr.write(usage());
    return name === undefined || name === '--help' || name === '-h' ? 0 : 2;
  }
  const file = new URL(`./commands/${name}.ts`, import.meta.url);
  const command = (await import(file.href)) as { run: (argv: string[]) => Promise<number> };
  return command.run(rest);
}

process.exitCode = await main(process.argv.slice(2));
