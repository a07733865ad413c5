// What a role adds to the worker host. The host alone is a unified worker: it serves Generate and
// prefills and decodes its own requests. The prefill role (@tandem/prefill) adds the Prefill
// service, which computes prompts into other workers' pages; the decode role (@tandem/decode) has
// a prefill worker compute its prompts into its reserved pages. `tandem worker --role` picks one.
import type {
  ClusterSecurity,
  grpc,
  Logger,
  MetricsRegistry,
  NatsConnection,
  ServiceOptions,
} from '@tandem/common';
import type { GenerateRequest as WireGenerateRequest } from '@tandem/proto';
import type { Engine, GenerateHooks, GenerateRequest } from '@tandem/runtime';
import type { OutputConstraints } from './constraints.ts';
import type { PrefillDecision } from './prefill-decision.ts';

export type RoleName = 'prefill' | 'decode';
/** What the worker announces: unified (no role), or its role. */
export type WorkerRoleName = 'unified' | RoleName;

/** What the host gives a role when it starts it. */
export interface RoleContext {
  engine: Engine;
  /** The served model name (kvtransfer handshakes and discovery check it). */
  modelName: string;
  workerId: string;
  /** The host's NATS connection (discovery of other workers), or null without NATS. */
  nc: NatsConnection | null;
  /** The host's constraint compiler (null: constrained requests are refused). */
  constraints: OutputConstraints | null;
  /** The cluster secret and gRPC TLS: the role's calls carry them, its discovery verifies with them. */
  security: ClusterSecurity;
  logger: Logger;
  /** The worker's metrics (labelled {worker, role, model}): the role adds its own series. */
  metrics: MetricsRegistry;
}

/** The role flags of `tandem worker` (declared once, in worker-options.ts). */
export interface RoleOptions {
  /** Decode: the kvtransfer receiver's listen address, and the host prefill workers dial. */
  kvHost: string;
  kvAdvertiseHost: string;
  /** Decode: a remote prefill (compute + transfer) is given up after this long. */
  prefillLeaseMs: number;
  /** Decode: a prefill worker that lands no KV this long and fails a health check is given up. */
  prefillStallMs: number;
  /** Decode, requests with no router decision: remote prefill from this many uncached tokens. */
  disaggThreshold: number;
  /** Prefill: parallel kvtransfer streams per decode worker. */
  kvStreams: number;
}

export interface WorkerRole {
  readonly name: RoleName;
  /** Decode role: its kvtransfer receiver's host:port (announced; prefill workers push only there). */
  readonly kvAddress: string | null;
  /** Adds the role's gRPC services to the host's server, before it serves (with the host's call check). */
  addServices(server: grpc.Server, options: ServiceOptions): void;
  /**
   * Engine hooks for one Generate call under the router's prefill decision (decode role: a
   * remote prefill into the reserved pages), or null when the role does not take part.
   */
  generateHooks(
    request: GenerateRequest,
    decision: PrefillDecision,
    wire: WireGenerateRequest,
  ): GenerateHooks | null;
  /** KV transfers into this worker now in flight and the bytes they have landed (decode role). */
  transferProgress(): { numTransfers: number; numBytes: number };
  /** Calls of the role in flight (prefill role: Prefill calls). */
  numRunning(): number;
  abortAll(): void;
  close(): Promise<void>;
}

export type RoleFactory = (context: RoleContext, options: RoleOptions) => Promise<WorkerRole>;
