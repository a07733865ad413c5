// @tandem/tokenizer: what the router and the runtime share about text: the checkpoint's tokenizer,
// its chat template, incremental detokenization for streams, and the cluster's one block hash.
export * from './block-hash.ts';
export * from './chat-template.ts';
export * from './detokenizer.ts';
export * from './errors.ts';
export * from './tokenizer.ts';
