// Free list and reference counts over the executor's KV page pool (page ids 0..numPages-1).
// Contract: allocate() hands out pages with refcount 1; every holder (a sequence's page table,
// the radix cache) that keeps a page calls retain(); everyone who let go calls release(). A page
// returns to the free list when its count reaches 0. Nothing here touches device memory.

import { OutOfPagesError } from './errors.ts';

export class PageAllocator {
  readonly numPages: number;
  private readonly freeList: Int32Array; // [numPages] stack of free page ids; top at numFree - 1
  private numFree: number;
  private readonly refCounts: Int32Array; // [numPages]

  constructor(numPages: number) {
    this.numPages = numPages;
    this.freeList = new Int32Array(numPages);
    this.refCounts = new Int32Array(numPages);
    // Low page ids come out first (easier to read in dumps).
    for (let i = 0; i < numPages; i++) this.freeList[i] = numPages - 1 - i;
    this.numFree = numPages;
  }

  get numFreePages(): number {
    return this.numFree;
  }

  canAllocate(numPages: number): boolean {
    return numPages <= this.numFree;
  }

  /** Takes `numPages` pages off the free list (each with refcount 1) and appends them to `out`. */
  allocate(numPages: number, out: number[] = []): number[] {
    if (numPages > this.numFree) throw new OutOfPagesError(numPages, this.numFree);
    for (let i = 0; i < numPages; i++) {
      const page = this.freeList[--this.numFree]!;
      this.refCounts[page] = 1;
      out.push(page);
    }
    return out;
  }

  retain(page: number): void {
    if (this.refCounts[page]! <= 0) throw new RangeError(`retain of free page ${page}`);
    this.refCounts[page]!++;
  }

  release(page: number): void {
    const count = this.refCounts[page]!;
    if (count <= 0) throw new RangeError(`release of free page ${page}`);
    this.refCounts[page] = count - 1;
    if (count === 1) this.freeList[this.numFree++] = page;
  }

  refCount(page: number): number {
    return this.refCounts[page]!;
  }
}
