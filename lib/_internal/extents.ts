/**
 * The one allocation language of fsimage: sorted, non-overlapping extents. ext bitmaps, NTFS
 * runlists, QCOW2 L2 tables and ntfsclone gaps all become extent lists; the sparse writer, the
 * QCOW2 writer and the ntfsclone encoder consume them.
 *
 * @module
 */

/** A byte range `[offset, offset + length)`. */
export interface ByteExtent {
  /** First byte. */
  offset: number;
  /** Number of bytes, > 0. */
  length: number;
}

/** A block (or cluster) range `[start, start + count)`. */
export interface BlockExtent {
  /** First block. */
  start: number;
  /** Number of blocks, > 0. */
  count: number;
}

/**
 * Checks that `extents` are sorted, non-overlapping, have positive integer lengths, and lie
 * inside `[0, limit)`. Throws a `RangeError` naming the first bad extent.
 *
 * @example
 * ```ts
 * import { validateExtents } from "./extents.ts";
 * validateExtents([{ offset: 0, length: 512 }, { offset: 1024, length: 512 }], 4096);
 * ```
 */
export function validateExtents(extents: readonly ByteExtent[], limit: number): void {
  let end = 0;
  for (let i = 0; i < extents.length; i++) {
    const e = extents[i]!;
    if (
      !Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length) || e.offset < 0 ||
      e.length <= 0
    ) {
      throw new RangeError(`Extent ${i} is invalid: offset ${e.offset}, length ${e.length}`);
    }
    if (e.offset < end) {
      throw new RangeError(
        `Extent ${i} at byte ${e.offset} is unsorted or overlaps the previous extent ending at byte ${end}`,
      );
    }
    end = e.offset + e.length;
    if (end > limit) {
      throw new RangeError(
        `Extent ${i} ends at byte ${end}, past the end of the source (${limit} bytes)`,
      );
    }
  }
}

/**
 * Sorts a copy of `extents`, merges overlapping and adjacent ones, and returns the normalized
 * list.
 *
 * @example
 * ```ts
 * import { normalizeExtents } from "./extents.ts";
 * const r = normalizeExtents([{ offset: 10, length: 5 }, { offset: 0, length: 10 }]);
 * console.assert(r.length === 1 && r[0]!.length === 15);
 * ```
 */
export function normalizeExtents(extents: readonly ByteExtent[]): ByteExtent[] {
  const s = extents.filter((e) => e.length > 0).map((e) => ({
    offset: e.offset,
    length: e.length,
  }));
  s.sort((a, b) => a.offset - b.offset);
  const out: ByteExtent[] = [];
  for (const e of s) {
    const last = out[out.length - 1];
    if (last && e.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, e.offset + e.length - last.offset);
    } else out.push(e);
  }
  return out;
}

/** Converts block extents of `blockSize` bytes to byte extents (no merging). */
export function blocksToBytes(extents: readonly BlockExtent[], blockSize: number): ByteExtent[] {
  return extents.map((e) => ({ offset: e.start * blockSize, length: e.count * blockSize }));
}

/** Total bytes covered by `extents`. */
export function extentsLength(extents: readonly ByteExtent[]): number {
  let n = 0;
  for (const e of extents) n += e.length;
  return n;
}

/**
 * Builds a sorted, merged block-extent list from block numbers added in any order. Memory
 * follows the number of runs, not the device size. Adding in ascending order is O(1) each;
 * out-of-order additions are kept in a side list and merged by {@linkcode BlockSetBuilder.build}.
 *
 * @example
 * ```ts
 * import { BlockSetBuilder } from "./extents.ts";
 * const b = new BlockSetBuilder();
 * b.add(5); b.add(6); b.addRange(1, 2); b.add(6);
 * console.assert(JSON.stringify(b.build()) === '[{"start":1,"count":2},{"start":5,"count":2}]');
 * ```
 */
export class BlockSetBuilder {
  #runs: BlockExtent[] = [];
  #stray: BlockExtent[] = [];

  /** Adds one block. */
  add(block: number): void {
    this.addRange(block, 1);
  }

  /** Adds `count` blocks starting at `start`. */
  addRange(start: number, count: number): void {
    if (count <= 0) return;
    const last = this.#runs[this.#runs.length - 1];
    if (!last) {
      this.#runs.push({ start, count });
    } else if (start >= last.start && start <= last.start + last.count) {
      last.count = Math.max(last.count, start + count - last.start);
    } else if (start > last.start + last.count) {
      this.#runs.push({ start, count });
    } else {
      this.#stray.push({ start, count });
      if (this.#stray.length > 65536) this.#compact();
    }
  }

  #compact(): void {
    this.#runs = mergeBlockExtents(this.#runs.concat(this.#stray));
    this.#stray = [];
  }

  /** Returns the sorted, merged extents. */
  build(): BlockExtent[] {
    this.#compact();
    return this.#runs.map((e) => ({ ...e }));
  }
}

/** Sorts and merges overlapping or adjacent block extents. */
export function mergeBlockExtents(extents: readonly BlockExtent[]): BlockExtent[] {
  const s = extents.filter((e) => e.count > 0).map((e) => ({ ...e }));
  s.sort((a, b) => a.start - b.start);
  const out: BlockExtent[] = [];
  for (const e of s) {
    const last = out[out.length - 1];
    if (last && e.start <= last.start + last.count) {
      last.count = Math.max(last.count, e.start + e.count - last.start);
    } else out.push(e);
  }
  return out;
}
