// A small Dockerfile linter for the rules that matter to tandem's images (hadolint is not
// available offline):
//   pinned-base      every FROM names an exact version tag (x.y.z...) or a digest, never
//                    latest, a floating tag or none (a FROM of an earlier stage is fine)
//   multi-stage      at least two stages: compilers stay out of what ships
//   non-root         the last stage sets USER to a non-root user after its FROM
//   no-march-native  nothing is compiled for the build machine: no -march=native or
//                    TANDEM_MARCH=native in a build command (rewriting a hard-coded one with
//                    sed is what the rule wants)
//   apt-hygiene      apt-get install with --no-install-recommends, lists removed in the same RUN
//   dockerignore     the repository root has a .dockerignore excluding node_modules, .git, build
//   node: node deploy/images/lint-dockerfiles.ts [FILE...]   (default: deploy/images/Dockerfile.*)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Finding {
  file: string;
  line: number;
  rule: 'pinned-base' | 'multi-stage' | 'non-root' | 'no-march-native' | 'apt-hygiene' | 'dockerignore';
  message: string;
}

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i] ?? '';
      if (/^\s*#/.test(next)) continue;
      line = `${line.replace(/\\\s*$/, ' ')}${next}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (match !== null)
      out.push({ line: start + 1, keyword: (match[1] ?? '').toUpperCase(), args: (match[2] ?? '').trim() });
  }
  return out;
}

const exactTag = /^[0-9]+\.[0-9]+(\.[0-9]+)?([-.][A-Za-z0-9.]+)*$/;

export function lintDockerfile(file: string, text: string): Finding[] {
  const findings: Finding[] = [];
  const instructions = parseDockerfile(text);
  const stages: string[] = [];
  const froms = instructions.filter((x) => x.keyword === 'FROM');
  for (const from of froms) {
    const parts = from.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    const image = parts[0] ?? '';
    const alias = parts[1]?.toUpperCase() === 'AS' ? parts[2] : undefined;
    if (!stages.includes(image)) {
      const digest = /@sha256:[0-9a-f]{64}$/.test(image);
      const nameAndTag = image.replace(/@sha256:.*$/, '');
      const colon = nameAndTag.lastIndexOf(':');
      const tag = colon > nameAndTag.lastIndexOf('/') ? nameAndTag.slice(colon + 1) : '';
      if (!digest && !exactTag.test(tag)) {
        findings.push({
          file,
          line: from.line,
          rule: 'pinned-base',
          message: `FROM ${image}: pin an exact version tag (e.g. node:24.21.0-bookworm-slim) or a @sha256 digest`,
        });
      }
    }
    if (alias !== undefined) stages.push(alias);
  }
  if (froms.length < 2) {
    findings.push({
      file,
      line: froms[0]?.line ?? 1,
      rule: 'multi-stage',
      message: 'one stage: build in a stage of its own, ship a clean one',
    });
  }
  const lastFrom = froms[froms.length - 1];
  const users = instructions.filter((x) => x.keyword === 'USER' && x.line > (lastFrom?.line ?? 0));
  const user = users[users.length - 1];
  if (user === undefined) {
    findings.push({
      file,
      line: lastFrom?.line ?? 1,
      rule: 'non-root',
      message: 'the final stage sets no USER (it would run as root)',
    });
  } else if (/^(root|0)(:|$)/.test(user.args)) {
    findings.push({ file, line: user.line, rule: 'non-root', message: `USER ${user.args} is root` });
  }
  for (const x of instructions) {
    if (x.keyword !== 'RUN' && x.keyword !== 'ARG' && x.keyword !== 'ENV') continue;
    // Each shell command of the RUN on its own: a sed that rewrites -march=native is allowed.
    for (const command of x.args.split(/&&|;|\|\|/)) {
      if (/^\s*sed\b/.test(command)) continue;
      if (/-march=native\b/.test(command) || /TANDEM_MARCH=["']?native\b/.test(command)) {
        findings.push({
          file,
          line: x.line,
          rule: 'no-march-native',
          message: `builds for the build machine: ${command.trim()}`,
        });
      }
    }
    if (x.keyword === 'RUN' && /apt-get\s+install/.test(x.args)) {
      if (!/--no-install-recommends/.test(x.args)) {
        findings.push({
          file,
          line: x.line,
          rule: 'apt-hygiene',
          message: 'apt-get install without --no-install-recommends',
        });
      }
      if (!/rm -rf \/var\/lib\/apt\/lists/.test(x.args)) {
        findings.push({
          file,
          line: x.line,
          rule: 'apt-hygiene',
          message: 'apt lists not removed in the same RUN',
        });
      }
    }
  }
  return findings;
}

export function lintDockerignore(root: string): Finding[] {
  const path = join(root, '.dockerignore');
  if (!existsSync(path))
    return [
      { file: path, line: 1, rule: 'dockerignore', message: 'no .dockerignore at the repository root' },
    ];
  const entries = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const findings: Finding[] = [];
  for (const needed of ['.git', 'node_modules', 'build']) {
    if (!entries.some((e) => e === needed || e === `**/${needed}`)) {
      findings.push({
        file: path,
        line: 1,
        rule: 'dockerignore',
        message: `.dockerignore does not exclude ${needed}`,
      });
    }
  }
  return findings;
}

export function main(argv: string[]): number {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const here = join(root, 'deploy', 'images');
  const files =
    argv.length > 0
      ? argv
      : readdirSync(here)
          .filter((f) => f.startsWith('Dockerfile.'))
          .map((f) => join(here, f));
  const findings = [
    ...files.flatMap((f) => lintDockerfile(f, readFileSync(f, 'utf8'))),
    ...lintDockerignore(root),
  ];
  for (const f of findings) process.stderr.write(`${f.file}:${f.line}: [${f.rule}] ${f.message}\n`);
  process.stdout.write(`${files.length} Dockerfiles, ${findings.length} findings\n`);
  return findings.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = main(process.argv.slice(2));
}
