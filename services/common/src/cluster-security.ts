// How the processes of one cluster trust each other (issue 18, defect 6: a fake worker announced
// on NATS received user prompts). Both are off by default, on a laptop; the Helm chart turns them
// on:
// - a shared secret (--cluster-secret): every gRPC call carries a token derived from it (workers
//   refuse calls without it, UNAUTHENTICATED), and a worker proves membership by answering an
//   Info challenge with HMAC-SHA256(secret, challenge, its id and address) before discovery uses it;
// - TLS (--tls-cert, --tls-key, --tls-ca): gRPC servers present a certificate; clients verify it
//   against the CA; with a CA on the server side every client must present a certificate the CA
//   signed (mTLS), and a worker without one cannot be reached, so it is never used. Clients check
//   the address they dial against the server's certificate, or --tls-server-name when given (one
//   certificate for a cluster whose workers are dialed by pod IP, as in Kubernetes).
// Discovery (router, decode and prefill roles) verifies a worker before using it whenever either
// is on (membership.ts).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type TandemError, UnauthenticatedError } from './errors.ts';
import { type ClientOptions, grpc } from './grpc.ts';
import type { OptionSpec } from './options.ts';

export interface ClusterTls {
  /** PEM: this process's certificate and key (a server's; a client's under mTLS). */
  cert: Buffer | null;
  key: Buffer | null;
  /** PEM: the CA that signs the cluster's certificates (clients verify servers with it; a server with it requires client certificates). */
  ca: Buffer | null;
  /** The name clients check in every server's certificate; null: the host they dial. */
  serverName: string | null;
}

export interface ClusterSecurity {
  /** The shared secret, or null. */
  readonly secret: Buffer | null;
  /** TLS material, or null: plaintext gRPC. */
  readonly tls: ClusterTls | null;
}

/** No secret, no TLS: a laptop. */
export const openCluster: ClusterSecurity = { secret: null, tls: null };

/** The options every cluster process has (spread into its declaration). */
export const clusterSecurityOptions = {
  'cluster-secret': {
    type: 'string',
    default: null,
    env: 'TANDEM_CLUSTER_SECRET',
    valueName: 'SECRET',
    doc: 'shared by every router and worker of the cluster: gRPC calls carry a token from it and workers prove membership with it before they get traffic (prefer the file or the environment: flags show in ps)',
  },
  'cluster-secret-file': {
    type: 'string',
    default: null,
    env: 'TANDEM_CLUSTER_SECRET_FILE',
    valueName: 'FILE',
    doc: 'the cluster secret, read from a file (surrounding whitespace ignored)',
  },
  'tls-cert': {
    type: 'string',
    default: null,
    env: 'TANDEM_TLS_CERT',
    valueName: 'PEM',
    doc: "gRPC TLS: this process's certificate (a worker's server certificate; a router's client certificate under mTLS)",
  },
  'tls-key': {
    type: 'string',
    default: null,
    env: 'TANDEM_TLS_KEY',
    valueName: 'PEM',
    doc: 'its private key',
  },
  'tls-ca': {
    type: 'string',
    default: null,
    env: 'TANDEM_TLS_CA',
    valueName: 'PEM',
    doc: "gRPC TLS: the cluster's CA (clients verify servers with it; a worker with it requires client certificates: mTLS)",
  },
  'tls-server-name': {
    type: 'string',
    default: null,
    env: 'TANDEM_TLS_SERVER_NAME',
    valueName: 'NAME',
    doc: "gRPC TLS: the name clients check in every server's certificate instead of the host they dial (one certificate for the cluster while workers are dialed by IP, as pods are)",
  },
} as const satisfies Record<string, OptionSpec>;

export interface ClusterSecurityValues {
  'cluster-secret': string | null;
  'cluster-secret-file': string | null;
  'tls-cert': string | null;
  'tls-key': string | null;
  'tls-ca': string | null;
  /** Optional: callers that predate it build values without it. */
  'tls-server-name'?: string | null;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new ConfigError(`${flag} ${path}: cannot read it`, { cause, param: flag });
  }
}

/** The security the options describe (files read now; a missing one is a ConfigError). */
export function clusterSecurityFrom(values: ClusterSecurityValues): ClusterSecurity {
  let secret: Buffer | null = null;
  if (values['cluster-secret'] !== null) secret = Buffer.from(values['cluster-secret'], 'utf8');
  else if (values['cluster-secret-file'] !== null) {
    const text = readPem(values['cluster-secret-file'], '--cluster-secret-file').toString('utf8').trim();
    if (text === '')
      throw new ConfigError('--cluster-secret-file is empty', { param: '--cluster-secret-file' });
    secret = Buffer.from(text, 'utf8');
  }
  const { 'tls-cert': cert, 'tls-key': key, 'tls-ca': ca } = values;
  if ((cert === null) !== (key === null)) {
    throw new ConfigError('--tls-cert and --tls-key go together', {
      param: cert === null ? '--tls-cert' : '--tls-key',
    });
  }
  const tls =
    cert === null && ca === null
      ? null
      : {
          cert: cert === null ? null : readPem(cert, '--tls-cert'),
          key: key === null ? null : readPem(key, '--tls-key'),
          ca: ca === null ? null : readPem(ca, '--tls-ca'),
          serverName: values['tls-server-name'] ?? null,
        };
  return { secret, tls };
}

/** Whether discovery must see a worker prove itself before using it. */
export function verifiesMembership(security: ClusterSecurity): boolean {
  return security.secret !== null || security.tls !== null;
}

/** The metadata key of the call token. */
export const clusterTokenHeader = 'tandem-cluster-token';

/** The token every call carries: derived from the secret (the secret itself never travels). */
function callToken(secret: Buffer): string {
  return createHmac('sha256', secret).update('tandem-call-v1').digest('hex');
}

/** Channel credentials and the call-token interceptor for a gRPC client of the cluster. */
export function grpcClientOptions(security: ClusterSecurity): ClientOptions {
  const options: ClientOptions = {};
  const { tls, secret } = security;
  if (tls !== null) {
    options.credentials = grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
    if (tls.serverName !== null) {
      options.channelOptions = {
        'grpc.ssl_target_name_override': tls.serverName,
        'grpc.default_authority': tls.serverName,
      };
    }
  }
  if (secret !== null) {
    const token = callToken(secret);
    options.interceptors = [
      (interceptorOptions, nextCall) =>
        new grpc.InterceptingCall(nextCall(interceptorOptions), {
          start: (metadata, listener, next) => {
            metadata.set(clusterTokenHeader, token);
            next(metadata, listener);
          },
        }),
    ];
  }
  return options;
}

/** A gRPC server's credentials: TLS when a certificate is given (client certificates required with a CA). */
export function grpcServerCredentials(security: ClusterSecurity): grpc.ServerCredentials {
  const { tls } = security;
  if (tls === null || tls.cert === null || tls.key === null) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    tls.ca,
    [{ cert_chain: tls.cert, private_key: tls.key }],
    tls.ca !== null,
  );
}

/** The check a worker's gRPC services run on every call (null: none, the cluster is open). */
export function callAuthorizer(
  security: ClusterSecurity,
): ((metadata: grpc.Metadata) => TandemError | null) | null {
  if (security.secret === null) return null;
  const expected = Buffer.from(callToken(security.secret), 'utf8');
  return (metadata) => {
    const presented = metadata.get(clusterTokenHeader)[0];
    const given = Buffer.from(typeof presented === 'string' ? presented : '', 'utf8');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
    return new UnauthenticatedError('the call carries no valid cluster token', {
      reason: 'cluster_token_invalid',
    });
  };
}

/** A fresh challenge for a worker's membership proof. */
export function membershipChallenge(): Uint8Array {
  return randomBytes(32);
}

/** What a worker answers a challenge with: HMAC(secret, domain | challenge | id | address). */
export function membershipProof(
  secret: Buffer,
  challenge: Uint8Array,
  workerId: string,
  grpcAddress: string,
): Uint8Array {
  const idHash = createHash('sha256').update(workerId).update('\0').update(grpcAddress).digest();
  return createHmac('sha256', secret)
    .update('tandem-membership-v1')
    .update(challenge)
    .update(idHash)
    .digest();
}

export function verifyMembershipProof(
  secret: Buffer,
  challenge: Uint8Array,
  workerId: string,
  grpcAddress: string,
  proof: Uint8Array,
): boolean {
  const expected = membershipProof(secret, challenge, workerId, grpcAddress);
  return proof.length === expected.length && timingSafeEqual(proof, expected);
}
