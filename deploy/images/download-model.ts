// Fetches a checkpoint from a Hugging Face-compatible model hub into a folder: the chart's
// init container (model.source: download). Node only (no Python in the images).
//   node deploy/images/download-model.ts --repo owner/name [--revision main] [--endpoint URL]
//        --dest DIR [--include GLOB ...]
// The token comes from $HF_TOKEN. Files already in DEST with the hub's size are kept, so a
// restart (or a cached volume) downloads only what is missing; each file lands through a
// temporary name, so a half-written file is never taken for a whole one.
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';

const usage = `usage: node deploy/images/download-model.ts --repo OWNER/NAME --dest DIR [options]

  --repo OWNER/NAME     model repository on the hub
  --revision REV        branch, tag or commit (default main)
  --endpoint URL        hub base URL (default $HF_ENDPOINT or https://huggingface.co)
  --dest DIR            folder to fill
  --include GLOB        only files matching (repeatable; * and ? wildcards); default all
  --help
The token, when the repository needs one, is read from $HF_TOKEN.
`;

interface HubFile {
  path: string;
  size: number | null;
}

/** `*.json` -> a RegExp over the whole path (also matching in subfolders' last segment). */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`(^|/)${body}$`);
}

async function hubFetch(url: string, token: string | null): Promise<Response> {
  const response = await fetch(url, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    redirect: 'follow',
  });
  if (!response.ok) {
    const hint = response.status === 401 || response.status === 403 ? ' (a gated model needs HF_TOKEN)' : '';
    throw new Error(`GET ${url}: HTTP ${response.status}${hint}`);
  }
  return response;
}

/** The repository's files at a revision (the hub's /api/models/{repo}/tree/{rev} listing). */
async function listFiles(
  endpoint: string,
  repo: string,
  revision: string,
  token: string | null,
): Promise<HubFile[]> {
  const url = `${endpoint}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
  const entries = (await (await hubFetch(url, token)).json()) as Array<{
    type: string;
    path: string;
    size?: number;
  }>;
  return entries.filter((e) => e.type === 'file').map((e) => ({ path: e.path, size: e.size ?? null }));
}

async function sizeOf(path: string): Promise<number | null> {
  return stat(path).then(
    (s) => s.size,
    () => null,
  );
}

export async function download(options: {
  repo: string;
  revision: string;
  endpoint: string;
  dest: string;
  include: string[];
  token: string | null;
  log: (line: string) => void;
}): Promise<{ fetched: string[]; kept: string[] }> {
  const patterns = options.include.map(globToRegExp);
  const files = (await listFiles(options.endpoint, options.repo, options.revision, options.token)).filter(
    (f) => patterns.length === 0 || patterns.some((p) => p.test(f.path)),
  );
  if (files.length === 0)
    throw new Error(`no file of ${options.repo}@${options.revision} matches ${options.include.join(' ')}`);
  const fetched: string[] = [];
  const kept: string[] = [];
  for (const file of files) {
    const target = normalize(join(options.dest, file.path));
    if (!target.startsWith(normalize(options.dest)))
      throw new Error(`refusing a path outside --dest: ${file.path}`);
    if (file.size !== null && (await sizeOf(target)) === file.size) {
      kept.push(file.path);
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.partial`;
    const url = `${options.endpoint}/${options.repo}/resolve/${encodeURIComponent(options.revision)}/${file.path}`;
    const response = await hubFetch(url, options.token);
    if (response.body === null) throw new Error(`GET ${url}: empty body`);
    try {
      await pipeline(
        Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
        createWriteStream(partial),
      );
      const size = await sizeOf(partial);
      if (file.size !== null && size !== file.size) {
        throw new Error(`${file.path}: got ${size} bytes, the hub lists ${file.size}`);
      }
      await rename(partial, target);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    options.log(`fetched ${file.path} (${file.size ?? '?'} bytes)`);
    fetched.push(file.path);
  }
  return { fetched, kept };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      repo: { type: 'string' },
      revision: { type: 'string', default: 'main' },
      endpoint: { type: 'string' },
      dest: { type: 'string' },
      include: { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
  }).values;
}

export async function main(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>;
  try {
    values = parse(argv);
  } catch (error) {
    process.stderr.write(`download-model: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(usage);
    return 0;
  }
  if (values.repo === undefined || values.dest === undefined) {
    process.stderr.write(`download-model: --repo and --dest are required\n${usage}`);
    return 2;
  }
  const endpoint = (values.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(
    /\/+$/,
    '',
  );
  try {
    const { fetched, kept } = await download({
      repo: values.repo,
      revision: values.revision ?? 'main',
      endpoint,
      dest: values.dest,
      include: values.include ?? [],
      token: process.env.HF_TOKEN || null,
      log: (line) => process.stdout.write(`${line}\n`),
    });
    process.stdout.write(`${values.repo}: ${fetched.length} fetched, ${kept.length} already there\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`download-model: ${(error as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
