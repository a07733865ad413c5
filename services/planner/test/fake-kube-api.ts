// A small Kubernetes API server for tests: real HTTP, the real paths, verbs, content types,
// Status errors and streaming watches of the API server, for Deployments (with their Scale
// subresource) and Pods. A built-in ReplicaSet controller turns spec.replicas into pods (Pending,
// then Ready after `readyAfterMs`) and removes pods the way a ReplicaSet does on scale-down
// (unready first, then the lowest pod-deletion-cost, then the newest), each one terminating for
// `drainMs` before it is gone. @kubernetes/client-node talks to it unmodified.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Json = Record<string, unknown>;
type Kind = 'Pod' | 'Deployment';

interface StoredObject {
  kind: Kind;
  object: Json & { metadata: Json & { name: string; namespace: string; labels?: Record<string, string> } };
}

interface WatchEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  kind: Kind;
  object: Json;
}

interface Watcher {
  kind: Kind;
  namespace: string;
  selector: Array<[string, string, boolean]>;
  response: ServerResponse;
}

export interface RequestRecord {
  method: string;
  path: string;
  contentType: string | null;
  body: unknown;
}

export interface DeploymentSpec {
  namespace: string;
  name: string;
  replicas: number;
  labels: Record<string, string>;
  /** How long a new pod stays unready (model loading). */
  readyAfterMs: number;
  /** How long a deleted pod stays terminating (draining). */
  drainMs: number;
}

function status(code: number, reason: string, message: string): Json {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** `a=b,c!=d` (equality-based selectors, as a Scale's status.selector is written). */
function parseSelector(text: string | null): Array<[string, string, boolean]> {
  if (text === null || text.trim() === '') return [];
  return text.split(',').map((term) => {
    const negated = term.includes('!=');
    const [key, value] = term.split(negated ? '!=' : term.includes('==') ? '==' : '=');
    return [(key ?? '').trim(), (value ?? '').trim(), negated];
  });
}

function matches(
  labels: Record<string, string> | undefined,
  selector: Array<[string, string, boolean]>,
): boolean {
  return selector.every(([key, value, negated]) => (labels?.[key] === value) !== negated);
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Json =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Json) } : {};
  for (const [key, value] of Object.entries(patch as Json)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

class PatchError extends Error {}

/** RFC 6902 JSON patch (add, replace, remove, test) on objects. */
function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  const doc = structuredClone(target);
  for (const op of ops as Array<{ op: string; path: string; value?: unknown }>) {
    const parts = op.path
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop();
    if (last === undefined) throw new PatchError(`bad path ${op.path}`);
    let parent: Json = doc;
    for (const part of parts) {
      const next = parent[part];
      if (next === null || typeof next !== 'object') throw new PatchError(`path ${op.path} does not exist`);
      parent = next as Json;
    }
    if (op.op === 'add' || op.op === 'replace') {
      if (op.op === 'replace' && !(last in parent)) throw new PatchError(`path ${op.path} does not exist`);
      parent[last] = op.value;
    } else if (op.op === 'remove') {
      if (!(last in parent)) throw new PatchError(`path ${op.path} does not exist`);
      delete parent[last];
    } else if (op.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value))
        throw new PatchError(`test failed at ${op.path}`);
    } else {
      throw new PatchError(`unsupported op ${op.op}`);
    }
  }
  return doc;
}

export class FakeKubeApi {
  readonly #server: Server;
  readonly #objects = new Map<string, StoredObject>();
  readonly #events: WatchEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #specs = new Map<string, DeploymentSpec>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #rv = 1000;
  /** Every request served, in order. */
  readonly requests: RequestRecord[] = [];
  port = 0;

  private constructor() {
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        this.#send(response, 500, status(500, 'InternalError', String(error)));
      });
    });
  }

  static async start(): Promise<FakeKubeApi> {
    const api = new FakeKubeApi();
    await new Promise<void>((resolve) => api.#server.listen(0, '127.0.0.1', resolve));
    api.port = (api.#server.address() as AddressInfo).port;
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A kubeconfig (YAML is a superset of JSON) that points client-node at this server. */
  kubeconfig(): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'planner', user: { token: 'test-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'planner', namespace: 'default' } }],
      'current-context': 'fake',
    });
  }

  addDeployment(spec: DeploymentSpec): void {
    this.#specs.set(`${spec.namespace}/${spec.name}`, spec);
    this.#put('Deployment', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        uid: randomBytes(8).toString('hex'),
        labels: spec.labels,
        generation: 1,
        creationTimestamp: new Date().toISOString(),
      },
      spec: {
        replicas: spec.replicas,
        selector: { matchLabels: spec.labels },
        template: {
          metadata: { labels: spec.labels },
          spec: { containers: [{ name: 'worker', image: 'tandem' }] },
        },
      },
      status: { replicas: 0, readyReplicas: 0, observedGeneration: 1 },
    });
    this.#reconcile(spec.namespace, spec.name);
  }

  /** The pods of a deployment (copies). */
  pods(namespace: string, deployment: string): Json[] {
    const spec = this.#specs.get(`${namespace}/${deployment}`);
    if (spec === undefined) return [];
    const selector = Object.entries(spec.labels).map(([k, v]) => [k, v, false] as [string, string, boolean]);
    return this.#list('Pod', namespace, selector).map((o) => structuredClone(o.object));
  }

  spec(namespace: string, deployment: string): number | null {
    const stored = this.#objects.get(`Deployment/${namespace}/${deployment}`);
    return stored === undefined ? null : ((stored.object.spec as { replicas: number }).replicas ?? null);
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    for (const watcher of this.#watchers) watcher.response.end();
    this.#watchers.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #key(kind: Kind, namespace: string, name: string): string {
    return `${kind}/${namespace}/${name}`;
  }

  #list(kind: Kind, namespace: string, selector: Array<[string, string, boolean]>): StoredObject[] {
    return [...this.#objects.values()].filter(
      (o) =>
        o.kind === kind &&
        o.object.metadata.namespace === namespace &&
        matches(o.object.metadata.labels, selector),
    );
  }

  /** Stores (adds or modifies) an object with a new resourceVersion and emits the watch event. */
  #put(kind: Kind, object: StoredObject['object']): void {
    const key = this.#key(kind, object.metadata.namespace, object.metadata.name);
    const type = this.#objects.has(key) ? 'MODIFIED' : 'ADDED';
    object.metadata.resourceVersion = String(++this.#rv);
    this.#objects.set(key, { kind, object });
    this.#emit({ rv: this.#rv, type, kind, object: structuredClone(object) });
  }

  #delete(kind: Kind, namespace: string, name: string): void {
    const key = this.#key(kind, namespace, name);
    const stored = this.#objects.get(key);
    if (stored === undefined) return;
    this.#objects.delete(key);
    stored.object.metadata.resourceVersion = String(++this.#rv);
    this.#emit({ rv: this.#rv, type: 'DELETED', kind, object: structuredClone(stored.object) });
  }

  #emit(event: WatchEvent): void {
    this.#events.push(event);
    for (const watcher of this.#watchers) this.#deliver(watcher, event);
  }

  #deliver(watcher: Watcher, event: WatchEvent): void {
    const metadata = event.object.metadata as { namespace: string; labels?: Record<string, string> };
    if (event.kind !== watcher.kind || metadata.namespace !== watcher.namespace) return;
    if (!matches(metadata.labels, watcher.selector)) return;
    watcher.response.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
  }

  /** The ReplicaSet controller: pods up to spec.replicas, or down by the ReplicaSet's ranking. */
  #reconcile(namespace: string, name: string): void {
    const spec = this.#specs.get(`${namespace}/${name}`);
    const deployment = this.#objects.get(this.#key('Deployment', namespace, name));
    if (spec === undefined || deployment === undefined) return;
    const replicas = (deployment.object.spec as { replicas: number }).replicas;
    const selector = Object.entries(spec.labels).map(([k, v]) => [k, v, false] as [string, string, boolean]);
    const alive = this.#list('Pod', namespace, selector).filter(
      (o) => o.object.metadata.deletionTimestamp === undefined,
    );
    for (let i = alive.length; i < replicas; i++) this.#createPod(spec);
    if (alive.length > replicas) {
      const rank = (o: StoredObject): [number, number, number] => {
        const ready = (
          (o.object.status as { conditions?: Array<{ type: string; status: string }> }).conditions ?? []
        ).some((c) => c.type === 'Ready' && c.status === 'True');
        const cost = Number(
          (o.object.metadata.annotations as Record<string, string> | undefined)?.[
            'controller.kubernetes.io/pod-deletion-cost'
          ] ?? 0,
        );
        return [ready ? 1 : 0, cost, -Date.parse(String(o.object.metadata.creationTimestamp))];
      };
      const victims = alive
        .map((o) => ({ o, r: rank(o) }))
        .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.r[2] - b.r[2])
        .slice(0, alive.length - replicas);
      for (const { o } of victims) {
        const object = structuredClone(o.object);
        object.metadata.deletionTimestamp = new Date().toISOString();
        object.metadata.deletionGracePeriodSeconds = Math.ceil(spec.drainMs / 1000);
        this.#put('Pod', object);
        this.#later(spec.drainMs, () => this.#delete('Pod', namespace, object.metadata.name));
      }
    }
    this.#updateStatus(namespace, name);
  }

  #createPod(spec: DeploymentSpec): void {
    const name = `${spec.name}-${randomBytes(3).toString('hex')}`;
    this.#put('Pod', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: spec.namespace,
        uid: randomBytes(8).toString('hex'),
        labels: { ...spec.labels },
        annotations: {},
        creationTimestamp: new Date().toISOString(),
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${spec.name}-rs`, uid: 'rs', controller: true },
        ],
      },
      spec: { containers: [{ name: 'worker', image: 'tandem' }] },
      status: { phase: 'Pending', conditions: [{ type: 'Ready', status: 'False' }] },
    });
    this.#later(spec.readyAfterMs, () => {
      const stored = this.#objects.get(this.#key('Pod', spec.namespace, name));
      if (stored === undefined || stored.object.metadata.deletionTimestamp !== undefined) return;
      const object = structuredClone(stored.object);
      object.status = {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True' }],
        podIP: '10.0.0.1',
      };
      this.#put('Pod', object);
      this.#updateStatus(spec.namespace, spec.name);
    });
  }

  #updateStatus(namespace: string, name: string): void {
    const spec = this.#specs.get(`${namespace}/${name}`);
    const deployment = this.#objects.get(this.#key('Deployment', namespace, name));
    if (spec === undefined || deployment === undefined) return;
    const selector = Object.entries(spec.labels).map(([k, v]) => [k, v, false] as [string, string, boolean]);
    const pods = this.#list('Pod', namespace, selector).filter(
      (o) => o.object.metadata.deletionTimestamp === undefined,
    );
    const ready = pods.filter((o) => (o.object.status as { phase: string }).phase === 'Running').length;
    const object = structuredClone(deployment.object);
    object.status = { ...(object.status as Json), replicas: pods.length, readyReplicas: ready };
    this.#put('Deployment', object);
  }

  #scaleOf(deployment: StoredObject['object']): Json {
    const labels = (deployment.spec as { selector: { matchLabels: Record<string, string> } }).selector
      .matchLabels;
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: deployment.metadata.name,
        namespace: deployment.metadata.namespace,
        uid: deployment.metadata.uid,
        resourceVersion: deployment.metadata.resourceVersion,
        creationTimestamp: deployment.metadata.creationTimestamp,
      },
      spec: { replicas: (deployment.spec as { replicas: number }).replicas },
      status: {
        replicas: (deployment.status as { replicas: number }).replicas,
        selector: Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      },
    };
  }

  #send(response: ServerResponse, code: number, body: unknown): void {
    if (response.headersSent) {
      response.end();
      return;
    }
    response.writeHead(code, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  }

  async #readBody(request: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text === '' ? null : JSON.parse(text);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const method = request.method ?? 'GET';
    const contentType = (request.headers['content-type'] ?? null)?.split(';')[0]?.trim() ?? null;
    let body: unknown = null;
    if (method === 'PUT' || method === 'PATCH' || method === 'POST') {
      try {
        body = await this.#readBody(request);
      } catch {
        this.#send(response, 400, status(400, 'BadRequest', 'the request body is not JSON'));
        return;
      }
    }
    this.requests.push({ method, path: `${url.pathname}${url.search}`, contentType, body });
    if (request.headers.authorization !== 'Bearer test-token') {
      this.#send(response, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const path = url.pathname;
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?$/.exec(path);
    if (m !== null) {
      this.#pods(method, m[1] ?? '', m[2] ?? null, url, contentType, body, response);
      return;
    }
    m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments(?:\/([^/]+))?(\/scale)?$/.exec(path);
    if (m !== null) {
      const [, namespace = '', name = null, scale] = m;
      if (scale !== undefined && name !== null)
        return this.#scale(method, namespace, name, contentType, body, response);
      if (method !== 'GET') {
        this.#send(response, 405, status(405, 'MethodNotAllowed', `${method} not allowed`));
        return;
      }
      if (name === null) {
        this.#collection('Deployment', namespace, url, response);
        return;
      }
      const stored = this.#objects.get(this.#key('Deployment', namespace, name));
      if (stored === undefined) {
        this.#send(response, 404, status(404, 'NotFound', `deployments.apps "${name}" not found`));
        return;
      }
      this.#send(response, 200, stored.object);
      return;
    }
    this.#send(response, 404, status(404, 'NotFound', `the server could not find the requested resource`));
  }

  #pods(
    method: string,
    namespace: string,
    name: string | null,
    url: URL,
    contentType: string | null,
    body: unknown,
    response: ServerResponse,
  ): void {
    if (name === null) {
      if (method !== 'GET') {
        this.#send(response, 405, status(405, 'MethodNotAllowed', `${method} not allowed`));
        return;
      }
      this.#collection('Pod', namespace, url, response);
      return;
    }
    const stored = this.#objects.get(this.#key('Pod', namespace, name));
    if (stored === undefined) {
      this.#send(response, 404, status(404, 'NotFound', `pods "${name}" not found`));
      return;
    }
    if (method === 'GET') {
      this.#send(response, 200, stored.object);
      return;
    }
    if (method !== 'PATCH') {
      this.#send(response, 405, status(405, 'MethodNotAllowed', `${method} not allowed`));
      return;
    }
    const patched = this.#patch(stored.object, contentType, body, response);
    if (patched === null) return;
    this.#put('Pod', patched as StoredObject['object']);
    this.#send(response, 200, patched);
  }

  /** Applies a PATCH body by its content type; answers the error itself and returns null on failure. */
  #patch(target: Json, contentType: string | null, body: unknown, response: ServerResponse): Json | null {
    try {
      if (contentType === 'application/json-patch+json') return jsonPatch(target, body);
      if (
        contentType === 'application/merge-patch+json' ||
        contentType === 'application/strategic-merge-patch+json'
      ) {
        return mergePatch(target, body) as Json;
      }
    } catch (error) {
      this.#send(
        response,
        422,
        status(422, 'Invalid', error instanceof Error ? error.message : String(error)),
      );
      return null;
    }
    this.#send(
      response,
      415,
      status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format: ${contentType}`),
    );
    return null;
  }

  #scale(
    method: string,
    namespace: string,
    name: string,
    contentType: string | null,
    body: unknown,
    response: ServerResponse,
  ): void {
    const stored = this.#objects.get(this.#key('Deployment', namespace, name));
    if (stored === undefined) {
      this.#send(response, 404, status(404, 'NotFound', `deployments.apps "${name}" not found`));
      return;
    }
    const scale = this.#scaleOf(stored.object);
    if (method === 'GET') {
      this.#send(response, 200, scale);
      return;
    }
    let next: Json;
    if (method === 'PUT') {
      next = body as Json;
      const rv = (next?.metadata as Json | undefined)?.resourceVersion;
      if (rv !== undefined && rv !== stored.object.metadata.resourceVersion) {
        this.#send(
          response,
          409,
          status(
            409,
            'Conflict',
            `Operation cannot be fulfilled on deployments.apps "${name}": the object has been modified`,
          ),
        );
        return;
      }
    } else if (method === 'PATCH') {
      const patched = this.#patch(scale, contentType, body, response);
      if (patched === null) return;
      next = patched;
    } else {
      this.#send(response, 405, status(405, 'MethodNotAllowed', `${method} not allowed`));
      return;
    }
    const replicas = (next?.spec as Json | undefined)?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      this.#send(
        response,
        422,
        status(
          422,
          'Invalid',
          `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}`,
        ),
      );
      return;
    }
    const object = structuredClone(stored.object);
    (object.spec as { replicas: number }).replicas = replicas;
    object.metadata.generation = Number(object.metadata.generation ?? 1) + 1;
    this.#put('Deployment', object);
    this.#reconcile(namespace, name);
    const updated = this.#objects.get(this.#key('Deployment', namespace, name));
    this.#send(response, 200, this.#scaleOf(updated?.object ?? object));
  }

  /** A list, or with ?watch=true a stream of watch events from ?resourceVersion on. */
  #collection(kind: Kind, namespace: string, url: URL, response: ServerResponse): void {
    const selector = parseSelector(url.searchParams.get('labelSelector'));
    const items = this.#list(kind, namespace, selector).map((o) => o.object);
    if (url.searchParams.get('watch') !== 'true' && url.searchParams.get('watch') !== '1') {
      this.#send(response, 200, {
        kind: `${kind}List`,
        apiVersion: kind === 'Pod' ? 'v1' : 'apps/v1',
        metadata: { resourceVersion: String(this.#rv) },
        items,
      });
      return;
    }
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    const oldest = this.#events[0]?.rv ?? this.#rv;
    if (from > 0 && from < oldest - 1) {
      this.#send(response, 410, status(410, 'Expired', `too old resource version: ${from} (${oldest})`));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // As the API server does: headers go out at once, events follow as they happen.
    response.flushHeaders();
    const watcher: Watcher = { kind, namespace, selector, response };
    if (from === 0) {
      for (const object of items) response.write(`${JSON.stringify({ type: 'ADDED', object })}\n`);
    } else {
      for (const event of this.#events) if (event.rv > from) this.#deliver(watcher, event);
    }
    this.#watchers.add(watcher);
    const timeoutS = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    if (timeoutS > 0) this.#later(timeoutS * 1000, () => response.end());
    response.on('close', () => this.#watchers.delete(watcher));
  }
}
