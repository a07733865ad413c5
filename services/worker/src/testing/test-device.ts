// Where the cross-service tests compute: the CPU (CI), or a GPU when TANDEM_TEST_DEVICE=cuda:N (the
// GPU host runs the same tests). On a GPU the workers compute in float32, so greedy outputs are
// exactly the fixtures' golden ones, and KV moves between workers of one host over CUDA IPC.

export function testDevice(): string {
  return process.env.TANDEM_TEST_DEVICE ?? 'cpu';
}

/** `tandem worker` flags for the test device (none on the CPU). */
export function testDeviceArgs(): string[] {
  const device = testDevice();
  return device === 'cpu' ? [] : ['--device', device, '--dtype', 'float32'];
}

/** The kvtransfer transport a prefill worker's KV must arrive over on the test device. */
export function expectedKvTransport(): 'tcp' | 'cuda_ipc' {
  return testDevice() === 'cpu' ? 'tcp' : 'cuda_ipc';
}
