// Milliseconds with sub-millisecond resolution on CLOCK_MONOTONIC, which every process on one
// machine shares: the test server logs on the same scale, so client and server times compare
// directly. (performance.timeOrigin is estimated per process and can differ by milliseconds.)
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
