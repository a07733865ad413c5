// Plain sequential greedy decoding on the executor alone (one sequence, no scheduler, no service):
// the reference for cases where the executor itself differs from transformers on a near tie.
import { defaultSampling, Executor } from '@tandem/executor';

export async function executorGreedy(
  modelDir: string,
  promptTokenIds: number[],
  numTokens: number,
): Promise<number[]> {
  const pageSize = 16;
  const numPages = Math.ceil((promptTokenIds.length + numTokens) / pageSize);
  const executor = await Executor.open({ modelDir, pageSize, numPages, numThreads: 2 });
  try {
    const tokens = [...promptTokenIds];
    const pageTable = Int32Array.from({ length: numPages }, (_, i) => i);
    let startPos = 0;
    while (tokens.length < promptTokenIds.length + numTokens) {
      const tokenIds = Int32Array.from(tokens.slice(startPos));
      const [output] = await executor.forward([
        {
          tokenIds,
          startPos,
          pageTable: pageTable.subarray(0, Math.ceil(tokens.length / pageSize)),
          sampleIndices: Int32Array.of(tokenIds.length - 1),
          sampling: defaultSampling(),
          promptTokenIds: null,
          outputTokenIds: null,
          targetIds: null,
          returnLogits: false,
          returnProbs: false,
        },
      ]);
      startPos = tokens.length;
      tokens.push(output!.samples[0]!.tokenId);
    }
    return tokens.slice(promptTokenIds.length);
  } finally {
    await executor.close();
  }
}
