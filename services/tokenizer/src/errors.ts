// Failures of loading a checkpoint's tokenizer or rendering its chat template.
import { FailedPreconditionError, InvalidArgumentError } from '@tandem/common';

/** tokenizer.json / tokenizer_config.json missing or unreadable. */
export class TokenizerLoadError extends FailedPreconditionError {
  constructor(message: string, cause?: unknown) {
    super(message, { cause, reason: 'tokenizer_load_failed' });
  }
}

/** The template failed to render these messages (e.g. roles that must alternate): the client's fault. */
export class ChatTemplateError extends InvalidArgumentError {
  constructor(message: string, cause?: unknown) {
    super(message, { cause, param: 'messages', reason: 'chat_template_failed' });
  }
}

/** The checkpoint's chat template does not parse, or there is none: the operator's problem. */
export class ChatTemplateUnusableError extends FailedPreconditionError {
  constructor(message: string, cause?: unknown) {
    super(message, { cause, reason: 'chat_template_unusable' });
  }
}
