// One step's work: which positions of which sequences the forward pass computes, and the
// SequenceInputs executor.forward receives for them (token ids, page table, sample indices).
// Contract: a batch is valid from schedule() until its postprocess(). An input's pageTable (and
// outputTokenIds) is a view of a buffer the sequence reuses, so it is current only until the next
// schedule(); sampleIndices may be an array shared by every input and must not be written.

import type { SequenceInput } from './executor-port.ts';
import type { Sequence } from './sequence.ts';

export interface ScheduledItem {
  seq: Sequence;
  startPos: number; // first position computed this step
  numTokens: number; // tokens computed this step
  sample: boolean; // the chunk reaches the end of the sequence: sample the next token
}

export interface ScheduledBatch {
  items: ScheduledItem[];
  inputs: SequenceInput[]; // [items.length], what executor.forward receives
  numTokens: number;
}

// Shared, read-only inputs.
const noSampleIndices = new Int32Array(0);
const sampleFirst = Int32Array.of(0);

/** The next numTokens positions of `seq`, from its first uncomputed one. */
export function scheduledItem(seq: Sequence, numTokens: number): ScheduledItem {
  const startPos = seq.numComputedTokens;
  return { seq, startPos, numTokens, sample: startPos + numTokens === seq.tokenIds.length };
}

/** The executor's input for one item; syncs the sequence's page-table buffer with its pageTable. */
export function sequenceInput(item: ScheduledItem, pageSize: number): SequenceInput {
  const { seq, startPos, numTokens } = item;
  const tokenIds = new Int32Array(numTokens);
  for (let i = 0; i < numTokens; i++) tokenIds[i] = seq.tokenIds[startPos + i]!;
  const numPages = Math.ceil((startPos + numTokens) / pageSize);
  if (seq.pageTableBuffer.length < numPages) {
    const grown = new Int32Array(Math.max(numPages, 2 * seq.pageTableBuffer.length));
    grown.set(seq.pageTableBuffer.subarray(0, seq.numSyncedPages));
    seq.pageTableBuffer = grown;
  }
  // Page tables only grow while a sequence runs (release resets numSyncedPages).
  for (let i = seq.numSyncedPages; i < numPages; i++) seq.pageTableBuffer[i] = seq.pageTable[i]!;
  if (numPages > seq.numSyncedPages) seq.numSyncedPages = numPages;
  const pageTable = seq.pageTableBuffer.subarray(0, numPages);
  const s = item.sample && seq.constraint !== null ? seq.constraint.nextSampling() : seq.sampling;
  const penalized = s.repetitionPenalty !== 1 || s.frequencyPenalty !== 0 || s.presencePenalty !== 0;
  return {
    tokenIds,
    startPos,
    pageTable,
    sampleIndices: item.sample
      ? numTokens === 1
        ? sampleFirst
        : Int32Array.of(numTokens - 1)
      : noSampleIndices,
    sampling: s,
    promptTokenIds: penalized ? seq.promptTokenArray() : null,
    outputTokenIds: penalized ? seq.outputTokenArray() : null,
    targetIds: null,
    returnLogits: false,
    returnProbs: false,
  };
}
