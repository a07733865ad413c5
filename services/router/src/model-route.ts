// One model behind the gateway: its checkpoint (tokenizer, chat template, tool-call format), its
// workers (registry: the announcements of that model's name), KV index and event sync, dispatcher
// (its own policy instance) and constraint checker. The router holds one per --model and routes
// each request by its `model` field; a name it does not serve is OpenAI's 404 model_not_found.
import type { Dispatcher } from './cluster/dispatcher.ts';
import type { WorkerRegistry } from './cluster/worker-registry.ts';
import type { KvEventSync } from './kv/kv-event-sync.ts';
import type { KvIndex } from './kv/kv-index.ts';
import type { ServedModel } from './model.ts';
import type { ConstraintChecker } from './openai/constraint-check.ts';

export interface ModelRoute {
  readonly model: ServedModel;
  readonly registry: WorkerRegistry;
  readonly index: KvIndex;
  readonly kvSync: KvEventSync;
  readonly dispatcher: Dispatcher;
  readonly constraints: ConstraintChecker;
}

export class ModelRoutes {
  readonly #routes: readonly ModelRoute[];
  readonly #byName = new Map<string, ModelRoute>();

  constructor(routes: readonly ModelRoute[]) {
    this.#routes = routes;
    for (const route of routes) {
      for (const name of [route.model.name, ...route.model.aliases]) {
        if (!this.#byName.has(name)) this.#byName.set(name, route);
      }
    }
  }

  /** In --model order. */
  all(): readonly ModelRoute[] {
    return this.#routes;
  }

  /** The route of a served name or alias, or null. */
  get(name: string): ModelRoute | null {
    return this.#byName.get(name) ?? null;
  }

  /** Every name requests may use (served names and aliases). */
  get acceptedNames(): string[] {
    return [...this.#byName.keys()];
  }

  /** The model a worker belongs to (its registry knows it), or null. */
  ownerOf(workerId: string): ModelRoute | null {
    return this.#routes.find((route) => route.registry.get(workerId) !== null) ?? null;
  }
}
