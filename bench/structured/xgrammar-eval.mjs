// The "look first" measurement: @mlc-ai/web-xgrammar (xgrammar compiled to WASM) on the same
// 128,256-token vocabulary and constraints as bench.ts. Not a workspace dependency: unpack the
// package and pass its lib/index.js.
//   npm pack @mlc-ai/web-xgrammar@0.1.27 && tar xzf mlc-ai-web-xgrammar-0.1.27.tgz
//   node bench/structured/xgrammar-eval.mjs package/lib/index.js [vocab.json]
// Its package.json says "type": "module" but lib/index.js is a CommonJS/UMD bundle, so Node 24
// cannot import it as published; this script copies it to a .cjs file and require()s that.
import { copyFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [libPath, vocabPath = join(tmpdir(), 'tandem-structured-vocab-128k.json')] = process.argv.slice(2);
const cjs = join(tmpdir(), 'web-xgrammar.cjs');
copyFileSync(libPath, cjs);
const xg = createRequire(import.meta.url)(cjs);

const tokenizer = JSON.parse(readFileSync(vocabPath, 'utf8'));
const vocab = [];
for (const [token, id] of Object.entries(tokenizer.model.vocab)) vocab[id] = token;
for (const added of tokenizer.added_tokens) vocab[added.id] = added.content;
const eos = 128001;

const percentiles = (samples) => {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => Math.round((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0) * 10) / 10;
  return { p50: at(0.5), p99: at(0.99), max: at(1), n: s.length };
};
let seed = 1;
const random = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

let t = performance.now();
const info = await xg.TokenizerInfo.createTokenizerInfo(vocab, 'byte_level', false, vocab.length, [eos]);
const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
console.log(
  `TokenizerInfo + GrammarCompiler for ${vocab.length} tokens: ${(performance.now() - t).toFixed(0)} ms`,
);

const strictSchema = {
  type: 'object',
  properties: {
    title: { type: 'string' },
    rating: { type: 'integer', minimum: 1, maximum: 5 },
    price: { type: 'number', exclusiveMinimum: 0, maximum: 10000 },
    summary: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    tags: { type: 'array', items: { type: 'string', enum: ['new', 'used', 'refurbished'] }, maxItems: 3 },
    seller: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        email: { type: 'string', format: 'email' },
        since: { type: 'string', format: 'date' },
      },
      required: ['name', 'email', 'since'],
      additionalProperties: false,
    },
  },
  required: ['title', 'rating', 'price', 'summary', 'tags', 'seller'],
  additionalProperties: false,
};
const constraints = {
  'json_schema (strict object)': () => compiler.compileJSONSchema(JSON.stringify(strictSchema), false),
  json_object: () => compiler.compileBuiltinJSONGrammar(),
  'choice (10)': () =>
    compiler.compileGrammar(
      `root ::= ${['positive', 'negative', 'neutral', 'mixed', 'unknown', 'very positive', 'very negative', 'sarcastic', 'question', 'off-topic'].map((c) => JSON.stringify(c)).join(' | ')}`,
    ),
};
const results = {};
for (const [name, compile] of Object.entries(constraints)) {
  t = performance.now();
  const grammar = await compile();
  const compileMs = performance.now() - t;
  const fill = [];
  const accept = [];
  let firstSequenceSteps = 0;
  for (let sequence = 0; sequence < 6; sequence++) {
    const matcher = await xg.GrammarMatcher.createGrammarMatcher(grammar);
    for (let step = 0; step < 64 && !matcher.isTerminated(); step++) {
      t = performance.now();
      const mask = await matcher.getNextTokenBitmask();
      fill.push((performance.now() - t) * 1000);
      const allowed = [];
      for (let i = 0; i < vocab.length; i++) if ((mask[i >> 5] >>> (i & 31)) & 1) allowed.push(i);
      const pick = allowed[Math.floor(random() * allowed.length)];
      t = performance.now();
      if (!matcher.acceptToken(pick)) throw new Error(`xgrammar refused its own allowed token ${pick}`);
      accept.push((performance.now() - t) * 1000);
    }
    matcher.dispose();
    if (sequence === 0) firstSequenceSteps = fill.length;
  }
  results[name] = {
    compileMs: Math.round(compileMs),
    fillUs: percentiles(fill.slice(firstSequenceSteps)),
    firstSequenceFillUs: percentiles(fill.slice(0, firstSequenceSteps)),
    acceptUs: percentiles(accept),
  };
  console.log(name, JSON.stringify(results[name]));
}
// Does it keep the bounds and formats? Texts that violate the schema must be refused.
const strict = await compiler.compileJSONSchema(JSON.stringify(strictSchema), false);
const violating = {
  'valid (control)':
    '{"title": "a", "rating": 1, "price": 1.5, "summary": null, "tags": [], "seller": {"name": "b", "email": "c@d.ee", "since": "2024-01-01"}}',
  'price -3 (exclusiveMinimum 0)':
    '{"title": "a", "rating": 1, "price": -3, "summary": null, "tags": [], "seller": {"name": "b", "email": "c@d.ee", "since": "2024-01-01"}}',
  'price 0 (exclusiveMinimum 0)':
    '{"title": "a", "rating": 1, "price": 0, "summary": null, "tags": [], "seller": {"name": "b", "email": "c@d.ee", "since": "2024-01-01"}}',
  'email without @ (format email)':
    '{"title": "a", "rating": 1, "price": 1, "summary": null, "tags": [], "seller": {"name": "b", "email": "cd.ee", "since": "2024-01-01"}}',
  'month 13 (format date)':
    '{"title": "a", "rating": 1, "price": 1, "summary": null, "tags": [], "seller": {"name": "b", "email": "c@d.ee", "since": "2024-13-01"}}',
};
for (const [what, text] of Object.entries(violating)) {
  // xgrammar's default layout (any_whitespace off): indent 2, ", " and ": " separators.
  for (const form of [JSON.stringify(JSON.parse(text), null, 2)]) {
    const matcher = await xg.GrammarMatcher.createGrammarMatcher(strict);
    const accepted = matcher._acceptString(form) && matcher.acceptToken(eos);
    const expected = what.startsWith('valid');
    console.log(`${what}: ${accepted ? 'accepted' : 'refused'}${accepted === expected ? '' : ' -- WRONG'}`);
    matcher.dispose();
  }
}
try {
  await compiler.compileJSONSchema(
    JSON.stringify({ type: 'object', properties: { age: { type: 'integer', minimum: 'x' } } }),
    false,
  );
  console.log('invalid schema: accepted');
} catch (error) {
  console.log(
    `invalid schema: ${String(error)} (no field path; the WASM module prints its own message to stderr)`,
  );
}
