// Hugging Face tokenizer_config.json fields read by more than one package (the tokenizer and the
// structured-output compiler both name the special tokens).

/** A special-token field of tokenizer_config.json: a string or an AddedToken object. */
export function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { content?: unknown }).content === 'string'
  ) {
    return (value as { content: string }).content;
  }
  return null;
}
