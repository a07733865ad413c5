// Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on the
// same machine (the test server logs on the same scale).
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
