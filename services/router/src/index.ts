// @tandem/router: the OpenAI-compatible gateway (validation, policies, KV index, admission).
export * from './errors.ts';
export * from './kv/block-keys.ts';
export * from './kv/kv-index.ts';
export * from './policy/policies.ts';
export * from './policy/string-hash.ts';
export type * from './policy/types.ts';
export { defaultRouterOptions, RouterApp, type RouterOptions } from './router-app.ts';
export { routerOptionsFromArgv, routerUsage, runRouterCommand } from './router-command.ts';
