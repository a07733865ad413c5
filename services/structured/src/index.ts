// @tandem/structured: constrained decoding. Compile a JSON Schema, json_object, regex, choice
// list or EBNF grammar against a model's vocabulary; a matcher per sequence gives the allowed
// tokens each step (bitmask or id list) and advances on the sampled token.
export { Automaton } from './automaton.ts';
export { CharSet } from './char-set.ts';
export { CompiledGrammar } from './compiled-grammar.ts';
export { type CompilerOptions, type ConstraintSpec, canonicalJson, GrammarCompiler } from './compiler.ts';
export { CompilerThread, type CompilerThreadOptions } from './compiler-thread.ts';
export * from './errors.ts';
export type { JsonFormatOptions } from './json-grammar.ts';
export { bitmaskToIds, GrammarMatcher } from './matcher.ts';
export type { TokenEncoding } from './token-decoding.ts';
export { TokenTrie } from './token-trie.ts';
export { GrammarReceiver, GrammarSender, type GrammarTransfer } from './transfer.ts';
export { Vocabulary, type VocabularyOptions, type VocabularyTransfer } from './vocabulary.ts';
