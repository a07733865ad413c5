// Proof of membership before discovery uses a worker (cluster-security.ts says when): an Info
// call over the cluster's credentials (under mTLS, a worker without a certificate the CA signed
// cannot answer it) carrying a fresh challenge, which a worker holding the cluster secret answers
// with its HMAC over the challenge, its id and its announced address. Anyone can announce on NATS;
// only members get traffic.
import { type InfoResponse, Worker } from '@tandem/proto';
import {
  type ClusterSecurity,
  grpcClientOptions,
  membershipChallenge,
  verifiesMembership,
  verifyMembershipProof,
} from '../cluster-security.ts';
import { createGrpcClient } from '../grpc.ts';
import type { Logger } from '../logger.ts';

/** What a verifier needs to know of a worker: who it says it is and where. */
export interface ClaimedWorker {
  workerId: string;
  grpcAddress: string;
}

/** Resolves true when the worker proved membership. */
export type MembershipVerifier = (worker: ClaimedWorker) => Promise<boolean>;

/**
 * The worker's Info, asked over the cluster's credentials with a membership challenge, or null
 * when it does not answer, answers as another worker, or (with a secret) its proof is wrong.
 */
export async function verifiedInfo(
  security: ClusterSecurity,
  worker: ClaimedWorker,
  logger: Logger,
  timeoutMs = 3000,
): Promise<InfoResponse | null> {
  const client = createGrpcClient(Worker, worker.grpcAddress, grpcClientOptions(security));
  const challenge = membershipChallenge();
  try {
    const info = await client.info({ membershipChallenge: challenge }, { timeoutMs });
    if (info.workerId !== worker.workerId) {
      logger.debug('a worker answered Info as another worker', {
        workerId: worker.workerId,
        address: worker.grpcAddress,
        answeredAs: info.workerId,
      });
      return null;
    }
    const { secret } = security;
    if (
      secret !== null &&
      !verifyMembershipProof(secret, challenge, worker.workerId, worker.grpcAddress, info.membershipProof)
    ) {
      logger.debug('a worker sent a wrong membership proof (another cluster secret?)', {
        workerId: worker.workerId,
        address: worker.grpcAddress,
      });
      return null;
    }
    return info;
  } catch (error) {
    logger.debug('a worker does not answer Info over the cluster credentials', {
      workerId: worker.workerId,
      address: worker.grpcAddress,
      error,
    });
    return null;
  } finally {
    client.close();
  }
}

/** The verifier discovery runs on each new worker, or null when the cluster is open. */
export function membershipVerifier(security: ClusterSecurity, logger: Logger): MembershipVerifier | null {
  if (!verifiesMembership(security)) return null;
  return async (worker) => (await verifiedInfo(security, worker, logger)) !== null;
}
