// The entry point: compiles a constraint spec (JSON Schema, json_object, regex, choice, EBNF)
// against one vocabulary, caching compiled grammars by the spec's canonical JSON so that the
// same schema is compiled once for every request that sends it.
import { compileAutomaton } from './automaton.ts';
import { CompiledGrammar, SharedMasks } from './compiled-grammar.ts';
import { parseEbnf } from './ebnf.ts';
import { InvalidChoiceError, UnsupportedSchemaError, VocabularyError } from './errors.ts';
import { alt, type Grammar, literal } from './grammar.ts';
import { withSchemaRules } from './grammar-schemas.ts';
import type { JsonFormatOptions } from './json-grammar.ts';
import { jsonObjectGrammar, jsonSchemaGrammar } from './json-schema.ts';
import { parseRegex } from './regex.ts';
import { ClassifyScratch, TokenRests } from './state-masks.ts';
import { SignatureRegistry } from './state-signature.ts';
import { TokenTrie } from './token-trie.ts';
import type { Vocabulary } from './vocabulary.ts';

/**
 * What to constrain the output to. `param` is the request field the constraint came from;
 * errors name it (or a field below it). Defaults: `response_format.json_schema.schema`,
 * `response_format`, `regex`, `choice`, `grammar`.
 */
export type ConstraintSpec =
  | { type: 'json_schema'; schema: unknown; param?: string }
  | { type: 'json_object'; param?: string }
  | { type: 'regex'; pattern: string; param?: string }
  | { type: 'choice'; choices: readonly string[]; param?: string }
  | {
      type: 'grammar';
      grammar: string;
      /**
       * Rules defined by JSON Schemas (name -> schema): the grammar refers to each name as a rule
       * matching one JSON value valid against it.
       */
      schemas?: Readonly<Record<string, unknown>>;
      /** The request field of each schema (errors name fields under it); default `<param>.schemas.<name>`. */
      schemaParams?: Readonly<Record<string, string>>;
      param?: string;
    };

export interface CompilerOptions {
  /** JSON whitespace for json_schema and json_object. */
  json?: JsonFormatOptions;
  /** Compiled grammars kept (least recently used dropped). Default 256. */
  cacheSize?: number;
  /** Memory the kept grammars may hold together (least recently used dropped). Default 512 MiB. */
  cacheBytes?: number;
  /** Automaton state limit per constraint. Default 200,000. */
  maxStates?: number;
  /**
   * Classify every automaton state's tokens in compile() (default true), so that no decode
   * step pays for it; false classifies each state when a matcher first reaches it.
   */
  precompute?: boolean;
}

export class GrammarCompiler {
  readonly vocabulary: Vocabulary;
  readonly trie: TokenTrie;
  private readonly options: CompilerOptions;
  private readonly scratch: ClassifyScratch;
  private readonly cache = new Map<string, CompiledGrammar>();
  /** Keys of specs check() accepted (least recently used dropped past cacheSize). */
  private readonly checked = new Map<string, true>();
  private readonly shared = new SharedMasks(new SignatureRegistry(), new TokenRests());

  constructor(vocabulary: Vocabulary, options: CompilerOptions = {}) {
    if (vocabulary.eosTokenIds.length === 0) {
      // Without an EOS id a finished output could not be ended: the mask would be empty.
      throw new VocabularyError('constrained decoding needs the vocabulary to name an EOS token', {
        param: 'eosTokenIds',
      });
    }
    this.vocabulary = vocabulary;
    this.options = options;
    this.trie = new TokenTrie(vocabulary);
    this.scratch = new ClassifyScratch(this.trie);
  }

  /** The rests of uncertain tokens this compiler interned (what transfers to other threads carry). */
  get tokenRests(): TokenRests {
    return this.shared.tokenRests;
  }

  /** The compiled constraint (from the cache when the same spec was compiled before). */
  compile(spec: ConstraintSpec): CompiledGrammar {
    const param = spec.param ?? defaultParams[spec.type];
    const key = canonicalJson(spec);
    if (key === null)
      throw new UnsupportedSchemaError(
        `specs nested deeper than ${maxSpecDepth} levels are not supported`,
        param,
      );
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const automaton = compileAutomaton(this.grammarOf(spec, param), this.vocabulary.alphabet, {
      param,
      ...(this.options.maxStates === undefined ? {} : { maxStates: this.options.maxStates }),
    });
    const compiled = new CompiledGrammar(key, automaton, this.vocabulary, {
      type: 'classify',
      classifier: { trie: this.trie, scratch: this.scratch, shared: this.shared },
    });
    if (this.options.precompute ?? true) compiled.precompute();
    this.cache.set(key, compiled);
    this.evict();
    return compiled;
  }

  /**
   * Validates a spec without classifying any token (what a gateway needs to answer 400 early):
   * the grammar and its automaton are built, so every error compile() would raise for the spec
   * is raised here, far cheaper. Accepted specs are remembered.
   */
  check(spec: ConstraintSpec): void {
    const param = spec.param ?? defaultParams[spec.type];
    const key = canonicalJson(spec);
    if (key === null)
      throw new UnsupportedSchemaError(
        `specs nested deeper than ${maxSpecDepth} levels are not supported`,
        param,
      );
    if (this.cache.has(key) || this.checked.delete(key)) {
      this.checked.set(key, true);
      return;
    }
    compileAutomaton(this.grammarOf(spec, param), this.vocabulary.alphabet, {
      param,
      ...(this.options.maxStates === undefined ? {} : { maxStates: this.options.maxStates }),
    });
    this.checked.set(key, true);
    if (this.checked.size > (this.options.cacheSize ?? 256) * 16) {
      const oldest = this.checked.keys().next();
      if (oldest.done !== true) this.checked.delete(oldest.value);
    }
  }

  /** Drops least recently used grammars beyond the count and memory budgets (the newest stays). */
  private evict(): void {
    const maxCount = this.options.cacheSize ?? 256;
    const maxBytes = this.options.cacheBytes ?? 512 * 1024 * 1024;
    let bytes = 0;
    for (const grammar of this.cache.values()) bytes += grammar.byteSize;
    for (const [key, grammar] of this.cache) {
      if (this.cache.size <= 1 || (this.cache.size <= maxCount && bytes <= maxBytes)) break;
      this.cache.delete(key);
      bytes -= grammar.byteSize;
    }
  }

  private grammarOf(spec: ConstraintSpec, param: string): Grammar {
    const json = this.options.json ?? {};
    switch (spec.type) {
      case 'json_schema':
        return jsonSchemaGrammar(spec.schema, param, json);
      case 'json_object':
        return jsonObjectGrammar(json);
      case 'regex':
        return { rules: new Map([['root', { expr: parseRegex(spec.pattern, param) }]]), root: 'root' };
      case 'choice':
        return { rules: new Map([['root', { expr: choiceExpr(spec.choices, param) }]]), root: 'root' };
      case 'grammar': {
        const grammar = parseEbnf(spec.grammar, param);
        if (spec.schemas === undefined) return grammar;
        const schemaParams = spec.schemaParams ?? {};
        return withSchemaRules(
          grammar,
          spec.schemas,
          param,
          (name) => schemaParams[name] ?? `${param}.schemas.${name}`,
          json,
        );
      }
    }
  }
}

const defaultParams: Readonly<Record<ConstraintSpec['type'], string>> = {
  json_schema: 'response_format.json_schema.schema',
  json_object: 'response_format',
  regex: 'regex',
  choice: 'choice',
  grammar: 'grammar',
};

function choiceExpr(choices: readonly string[], param: string) {
  if (!Array.isArray(choices) || choices.length === 0) {
    throw new InvalidChoiceError('choice must be a non-empty list of strings', param);
  }
  choices.forEach((choice, i) => {
    if (typeof choice !== 'string')
      throw new InvalidChoiceError('choice must hold only strings', `${param}[${i}]`);
  });
  return alt(...choices.map((choice) => literal(choice)));
}

/** Deeper specs are refused before anything recurses over them. */
const maxSpecDepth = 256;

/** JSON with object keys sorted, so equal specs share one cache entry; null when too deep. */
export function canonicalJson(value: unknown): string | null {
  const parts: string[] = [];
  const write = (v: unknown, depth: number): boolean => {
    if (depth > maxSpecDepth) return false;
    if (typeof v !== 'object' || v === null) {
      parts.push(JSON.stringify(v) ?? 'null');
      return true;
    }
    if (Array.isArray(v)) {
      parts.push('[');
      for (let i = 0; i < v.length; i++) {
        if (i > 0) parts.push(',');
        if (!write(v[i], depth + 1)) return false;
      }
      parts.push(']');
      return true;
    }
    parts.push('{');
    let first = true;
    for (const key of Object.keys(v).sort()) {
      const item = (v as Record<string, unknown>)[key];
      if (item === undefined) continue;
      parts.push(`${first ? '' : ','}${JSON.stringify(key)}:`);
      first = false;
      if (!write(item, depth + 1)) return false;
    }
    parts.push('}');
    return true;
  };
  return write(value, 0) ? parts.join('') : null;
}
