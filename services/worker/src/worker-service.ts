// The Worker gRPC service on a runtime engine. Each Generate stream owns an AbortController that
// fires when the client cancels or disconnects, when Cancel names the request, or on shutdown; the
// engine then frees everything the request held.
import type { CallContext, GrpcServiceImpl, Logger } from '@tandem/common';
import {
  AlreadyExistsError,
  activeSpan,
  membershipProof,
  PhaseSpans,
  tracingEnabled,
  UnimplementedError,
  withContext,
} from '@tandem/common';
import { type OutputConstraint, Role, ServingStatus, type Worker } from '@tandem/proto';
import type { GenerateHooks, TokenConstraint } from '@tandem/runtime';
import type { OutputConstraints } from './constraints.ts';
import {
  type RequestLimits,
  toDumpChunks,
  toEngineRequest,
  toGenerateResponse,
  toWireKvLayout,
  toWireLoad,
} from './convert.ts';
import type { ModelFacts, WorkerEngine } from './engine-port.ts';
import { toServiceError, WorkerDrainingError } from './errors.ts';
import { type PrefillDecision, prefillDecisionFromWire } from './prefill-decision.ts';
import type { WorkerRole, WorkerRoleName } from './role.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface WorkerServiceOptions {
  workerId: string;
  engine: WorkerEngine;
  model: ModelFacts;
  device: string;
  /** Process start (identifies this incarnation in dumps). */
  startedAtMs: number;
  /** The last KV-event sequence number published on NATS (or the engine's, without NATS). */
  kvSeq: () => number;
  logger: Logger;
  /** The role this worker runs (null: unified). */
  role: WorkerRole | null;
  metrics: WorkerMetrics;
  /** The gRPC address it announces (its membership proof covers it). */
  grpcAddress: string;
  /** The cluster secret (membership proofs), or null. */
  secret: Buffer | null;
  /** Compiles requests' output constraints (null: constrained requests are refused). */
  constraints: OutputConstraints | null;
}

const wireRoles = { unified: Role.UNIFIED, prefill: Role.PREFILL, decode: Role.DECODE } as const;

export class WorkerService {
  readonly #options: WorkerServiceOptions;
  readonly #limits: RequestLimits;
  /** Running requests: request id -> the controller that aborts it. */
  readonly #running = new Map<string, AbortController>();
  #draining = false;

  constructor(options: WorkerServiceOptions) {
    this.#options = options;
    const info = options.model.modelInfo;
    this.#limits = {
      vocabSize: info.vocabSize,
      maxModelLen: info.maxPositionEmbeddings,
      maxN: 128,
      maxTopLogprobs: 20,
    };
  }

  get numRunning(): number {
    return this.#running.size;
  }

  get roleName(): WorkerRoleName {
    return this.#options.role?.name ?? 'unified';
  }

  /** Stop taking requests (Health says DRAINING; Generate fails with UNAVAILABLE). */
  drain(): void {
    this.#draining = true;
  }

  /** Aborts every running request. */
  abortAll(): void {
    for (const controller of this.#running.values()) controller.abort();
  }

  implementation(): GrpcServiceImpl<typeof Worker> {
    return {
      generate: (request, context) => this.#generate(request, context),
      cancel: async (request) => {
        const controller = this.#running.get(request.requestId);
        controller?.abort();
        this.#options.logger.debug('cancel', {
          requestId: request.requestId,
          found: controller !== undefined,
        });
        return { found: controller !== undefined };
      },
      health: async () => ({
        status: this.#draining ? ServingStatus.DRAINING : ServingStatus.SERVING,
        workerId: this.#options.workerId,
      }),
      info: async (request) => {
        const { model, secret, workerId, grpcAddress } = this.#options;
        const challenge = request.membershipChallenge;
        return {
          grpcAddress,
          ...(secret !== null && challenge.length > 0
            ? { membershipProof: membershipProof(secret, challenge, workerId, grpcAddress) }
            : {}),
          workerId: this.#options.workerId,
          modelName: model.modelName,
          architecture: model.modelInfo.architecture,
          modelType: model.modelInfo.modelType,
          role: wireRoles[this.roleName],
          kvLayout: toWireKvLayout(model.kvLayout),
          load: toWireLoad(this.#options.engine.load()),
          vocabSize: model.modelInfo.vocabSize,
          maxPositionEmbeddings: model.modelInfo.maxPositionEmbeddings,
          eosTokenIds: model.modelInfo.eosTokenIds,
          device: this.#options.device,
          kvSeq: BigInt(this.#options.kvSeq()),
          ...this.#transferProgress(),
          ...this.#deviceTime(),
        };
      },
      dumpBlocks: (request) => this.#dumpBlocks(request.maxBlocksPerChunk),
    };
  }

  #deviceTime() {
    const stats = this.#options.engine.stats();
    return {
      deviceBusyMs: stats.deviceBusyMs,
      deviceIdleMs: stats.deviceIdleMs,
      deviceBusyMsLargeBatch: stats.deviceBusyMsLarge,
      deviceIdleMsLargeBatch: stats.deviceIdleMsLarge,
    };
  }

  /** The request's attributes on the gRPC server span, and its phases as child spans. */
  #tracePhases(request: ReturnType<typeof toEngineRequest>, decision: PrefillDecision): PhaseSpans {
    activeSpan().setAttributes({
      'gen_ai.operation.name': 'generate',
      'gen_ai.request.model': this.#options.model.modelName,
      'gen_ai.request.max_tokens': request.maxTokens,
      'gen_ai.usage.input_tokens': request.promptTokenIds.length,
      'tandem.request.id': request.requestId,
      'tandem.worker.id': this.#options.workerId,
      'tandem.worker.role': this.roleName,
      'tandem.prefill.decision': decision.type,
    });
    return new PhaseSpans('tandem.queue');
  }

  #transferProgress(): { kvTransfersInFlight: number; kvBytesInFlight: bigint } {
    const progress = this.#options.role?.transferProgress() ?? { numTransfers: 0, numBytes: 0 };
    return { kvTransfersInFlight: progress.numTransfers, kvBytesInFlight: BigInt(progress.numBytes) };
  }

  async #compileConstraint(wire: OutputConstraint): Promise<TokenConstraint> {
    const constraints = this.#options.constraints;
    try {
      if (constraints === null) {
        throw new UnimplementedError(`worker ${this.#options.workerId} does not decode with constraints`, {
          param: 'constraint',
        });
      }
      return await constraints.compile(wire);
    } catch (error) {
      throw toServiceError(error);
    }
  }

  async *#dumpBlocks(maxBlocksPerChunk: number) {
    const dump = this.#options.engine.dumpBlocks();
    yield* toDumpChunks(this.#options.workerId, this.#options.startedAtMs, dump, maxBlocksPerChunk);
  }

  async *#generate(
    wireRequest: Parameters<GrpcServiceImpl<typeof Worker>['generate']>[0],
    context: CallContext,
  ) {
    if (this.#draining) throw new WorkerDrainingError(`worker ${this.#options.workerId} is shutting down`);
    let request: ReturnType<typeof toEngineRequest>;
    try {
      request = toEngineRequest(wireRequest, this.#limits);
    } catch (error) {
      throw toServiceError(error);
    }
    if (this.#running.has(request.requestId)) {
      throw new AlreadyExistsError(`request ${request.requestId} is already running`, {
        param: 'request_id',
      });
    }
    // Disaggregation: the router's decision (a named prefill worker, or local), or none.
    let decision: PrefillDecision;
    try {
      decision = prefillDecisionFromWire(wireRequest.prefill);
    } catch (error) {
      throw toServiceError(error);
    }
    const roleHooks = this.#options.role?.generateHooks(request, decision, wireRequest) ?? null;
    if (decision.type === 'remote' && roleHooks === null) {
      throw toServiceError(
        new UnimplementedError(`worker ${this.#options.workerId} is not a decode worker: no remote prefill`, {
          param: 'prefill',
        }),
      );
    }
    if (wireRequest.constraint !== undefined) {
      // Compiled off the decode loop (a worker thread) before the request is queued.
      request.constraint = await this.#compileConstraint(wireRequest.constraint);
      if (context.signal.aborted) return;
    }
    const controller = new AbortController();
    const onClientGone = (): void => controller.abort();
    context.signal.addEventListener('abort', onClientGone, { once: true });
    this.#running.set(request.requestId, controller);
    const log = this.#options.logger.child({ requestId: request.requestId });
    const startedAt = performance.now();
    let numTokens = 0;
    log.debug('generate', {
      numPromptTokens: request.promptTokenIds.length,
      maxTokens: request.maxTokens,
      n: request.n,
    });
    const phases = tracingEnabled() ? this.#tracePhases(request, decision) : null;
    const hooks = phases === null ? (roleHooks ?? {}) : tracedHooks(roleHooks ?? {}, phases);
    let failure: unknown = null;
    try {
      for await (const chunk of this.#options.engine.generate(request, controller.signal, hooks)) {
        if (numTokens === 0 && chunk.tokenIds.length > 0) phases?.next('tandem.decode');
        numTokens += chunk.tokenIds.length;
        this.#options.metrics.onTokensGenerated(chunk.tokenIds.length);
        yield toGenerateResponse(chunk);
      }
    } catch (error) {
      if (controller.signal.aborted) {
        log.debug('generate aborted', { numTokens });
        return;
      }
      const serviceError = toServiceError(error);
      failure = serviceError;
      log.warn('generate failed', { error: serviceError });
      throw serviceError;
    } finally {
      phases?.end(failure);
      if (phases !== null) activeSpan().setAttribute('gen_ai.usage.output_tokens', numTokens);
      context.signal.removeEventListener('abort', onClientGone);
      this.#running.delete(request.requestId);
      log.debug('generate done', {
        numTokens,
        elapsedMs: Math.round(performance.now() - startedAt),
        aborted: controller.signal.aborted,
      });
    }
  }
}

/**
 * The role's hooks plus the phase marks: admission ends the queue phase and starts the prefill
 * phase, and a remote prefill runs in that phase's context (its Prefill call is a child of it).
 */
function tracedHooks(hooks: GenerateHooks, phases: PhaseSpans): GenerateHooks {
  const remote = hooks.remotePrefill ?? null;
  return {
    ...hooks,
    onAdmitted: (numCachedTokens) =>
      phases.next('tandem.prefill', {
        'tandem.cached_tokens': numCachedTokens,
        'tandem.prefill.mode': remote === null ? 'local' : 'remote',
      }),
    remotePrefill:
      remote === null
        ? null
        : {
            fill: (reservation, signal) =>
              withContext(phases.context, () => remote.fill(reservation, signal)),
          },
  };
}
