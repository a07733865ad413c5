// The Scaler for a cluster: each pool is a Deployment, resized through its Scale subresource
// (get / patch deployments/scale: all the RBAC it needs on Deployments). Its pods are followed
// with an informer (list + watch on the Scale's own label selector), so the planner knows how
// many are still draining. Before a scale-down the chosen victims get the lowest
// pod-deletion-cost, so the ReplicaSet removes the idle workers, which then drain on SIGTERM
// (stop taking work, deregister, finish in flight, exit) within terminationGracePeriodSeconds.
import {
  AppsV1Api,
  CoreV1Api,
  type Informer,
  type KubeConfig,
  makeInformer,
  type ObjectCache,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { type Logger, UnavailableError } from '@tandem/common';
import type { PoolName, PoolState, Scaler } from './types.ts';

export const deletionCostAnnotation = 'controller.kubernetes.io/pod-deletion-cost';
/** Below any cost a user would set by hand. */
const victimDeletionCost = '-100000';

export interface KubernetesScalerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  deployments: Record<PoolName, string>;
  logger: Logger;
}

interface PoolWatch {
  deployment: string;
  informer: Informer<V1Pod> & ObjectCache<V1Pod>;
}

/** The HTTP status of a client-node ApiException, or null. */
function statusOf(error: unknown): number | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : null;
}

export class KubernetesScaler implements Scaler {
  readonly #options: KubernetesScalerOptions;
  readonly #apps: AppsV1Api;
  readonly #core: CoreV1Api;
  readonly #pools = new Map<PoolName, PoolWatch>();

  private constructor(options: KubernetesScalerOptions) {
    this.#options = options;
    this.#apps = options.kubeConfig.makeApiClient(AppsV1Api);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Reads both Scale objects (failing fast on a wrong name or missing RBAC), starts the pod informers. */
  static async start(options: KubernetesScalerOptions): Promise<KubernetesScaler> {
    const scaler = new KubernetesScaler(options);
    try {
      for (const pool of ['prefill', 'decode'] as const) await scaler.#watchPool(pool);
    } catch (error) {
      await scaler.close();
      throw error;
    }
    return scaler;
  }

  async #watchPool(pool: PoolName): Promise<void> {
    const { namespace, deployments, logger } = this.#options;
    const name = deployments[pool];
    const scale = await this.#readScale(name);
    const selector = scale.status?.selector ?? '';
    if (selector === '') {
      throw new UnavailableError(`deployment ${namespace}/${name} reports no label selector in its scale`);
    }
    const informer = makeInformer<V1Pod>(
      this.#options.kubeConfig,
      `/api/v1/namespaces/${namespace}/pods`,
      () => this.#core.listNamespacedPod({ namespace, labelSelector: selector }),
      selector,
    );
    informer.on('error', (error: unknown) => {
      logger.warn('pod watch failed; restarting', { pool, error: String(error) });
      setTimeout(() => {
        informer
          .start()
          .catch((e: unknown) => logger.warn('pod watch restart failed', { pool, error: String(e) }));
      }, 2000).unref();
    });
    await informer.start();
    this.#pools.set(pool, { deployment: name, informer });
  }

  async #readScale(name: string) {
    try {
      return await this.#apps.readNamespacedDeploymentScale({ name, namespace: this.#options.namespace });
    } catch (cause) {
      throw new UnavailableError(
        `cannot read deployments/${name}/scale in ${this.#options.namespace} (HTTP ${statusOf(cause) ?? '?'})`,
        { cause },
      );
    }
  }

  #watch(pool: PoolName): PoolWatch {
    const watch = this.#pools.get(pool);
    if (watch === undefined) throw new UnavailableError(`the ${pool} pool is not being watched`);
    return watch;
  }

  /** The pool's pods by name: alive (not terminating; `ready` among them) and draining. */
  pods(pool: PoolName): { alive: string[]; ready: string[]; terminating: string[] } {
    const alive: string[] = [];
    const ready: string[] = [];
    const terminating: string[] = [];
    for (const pod of this.#watch(pool).informer.list()) {
      const name = pod.metadata?.name;
      if (name === undefined) continue;
      if (pod.metadata?.deletionTimestamp != null) terminating.push(name);
      else if (pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
        alive.push(name);
        if (pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ready.push(name);
      }
    }
    return { alive, ready, terminating };
  }

  async read(pool: PoolName): Promise<PoolState> {
    const scale = await this.#readScale(this.#watch(pool).deployment);
    const { alive, ready, terminating } = this.pods(pool);
    return {
      desired: scale.spec?.replicas ?? 0,
      current: alive.length,
      ready: ready.length,
      terminating: terminating.length,
    };
  }

  async scale(pool: PoolName, replicas: number, victims: readonly string[]): Promise<void> {
    const { namespace } = this.#options;
    const { deployment } = this.#watch(pool);
    const alive = new Set(this.pods(pool).alive);
    for (const name of victims.filter((v) => alive.has(v))) {
      await this.#core.patchNamespacedPod(
        {
          name,
          namespace,
          body: { metadata: { annotations: { [deletionCostAnnotation]: victimDeletionCost } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    }
    try {
      await this.#apps.patchNamespacedDeploymentScale({
        name: deployment,
        namespace,
        body: [{ op: 'replace', path: '/spec/replicas', value: replicas }],
      });
    } catch (cause) {
      throw new UnavailableError(
        `cannot scale deployments/${deployment} to ${replicas} (HTTP ${statusOf(cause) ?? '?'})`,
        {
          cause,
        },
      );
    }
  }

  async close(): Promise<void> {
    for (const { informer } of this.#pools.values()) await informer.stop();
    this.#pools.clear();
  }
}
