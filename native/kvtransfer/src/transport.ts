// The transport rule and what a build can do, for tools, tests and logs. The rule itself lives in
// the addon (cpp/core/choice.cc): connect() applies it to the receiver's handshake reply.
import { fromNative } from './errors.ts';
import {
  type AddonKind,
  type KvBuildInfo,
  type KvEndpointView,
  type KvTransportCandidate,
  type KvTransportPreference,
  loadAddon,
} from './native.ts';

export interface KvTransportChoice {
  /** Possible transports, best first: connect() uses the first whose setup succeeds. */
  usable: KvTransportCandidate[];
  /** Better transports that are not possible, with why. */
  rejected: KvTransportCandidate[];
}

/**
 * Applies the rule to two endpoints. A forced preference that is not possible throws
 * KvTransportUnavailableError naming why.
 */
export function chooseTransport(
  sender: KvEndpointView,
  receiver: KvEndpointView,
  preference: KvTransportPreference = 'auto',
): KvTransportChoice {
  try {
    return loadAddon().chooseTransport(sender, receiver, preference);
  } catch (error) {
    if (error instanceof TypeError) throw error;
    throw fromNative(error);
  }
}

/** What a build of the addon can do on this machine (CUDA devices, NCCL, RDMA). */
export function kvtransferBuildInfo(kind: AddonKind = 'cpu'): KvBuildInfo {
  return loadAddon(kind).buildInfo();
}
