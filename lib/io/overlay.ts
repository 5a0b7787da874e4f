import { isZero } from "../_internal/bytes.ts";
import type { Source } from "./types.ts";

/**
 * A copy-on-write view of a source: writes land in memory, block by block, and reads see them on
 * top of the untouched source. It lets an in-place transformation (scrubbing names, wiping a
 * journal) run on a read-only device and feed its result straight into any writer, without
 * touching the source or needing a scratch file. Memory follows the blocks changed; blocks written
 * as all zeros cost no data memory.
 *
 * @example
 * ```ts
 * import { MemorySource } from "./memory.ts";
 * import { OverlaySource } from "./overlay.ts";
 * const base = new MemorySource(new Uint8Array(8192).fill(1));
 * const o = new OverlaySource(base, { blockSize: 4096 });
 * o.writeAt(4090, new Uint8Array(10));
 * const b = new Uint8Array(20);
 * o.readAt(4080, b);
 * console.assert(b[9] === 1 && b[10] === 0 && b[19] === 0 && base.bytes[4090] === 1);
 * ```
 */
export class OverlaySource implements Source {
  readonly #base: Source;
  readonly #bs: number;
  readonly #blocks = new Map<number, Uint8Array | null>(); // null: an all-zero block
  /** Bytes of changed data held in memory. */
  heldBytes = 0;

  /** Overlays `base`; `blockSize` (default 4096) is the granularity of the copy. */
  constructor(base: Source, options: { blockSize?: number } = {}) {
    this.#base = base;
    this.#bs = options.blockSize ?? 4096;
    if (!Number.isSafeInteger(this.#bs) || this.#bs <= 0) {
      throw new RangeError(`Invalid block size ${this.#bs}`);
    }
  }
  /** The base source's name. */
  get name(): string {
    return this.#base.name;
  }
  /** The base source's size. */
  get size(): number {
    return this.#base.size;
  }
  /** Number of blocks changed. */
  get changedBlocks(): number {
    return this.#blocks.size;
  }

  #block(i: number): Uint8Array {
    const held = this.#blocks.get(i);
    if (held) return held.slice();
    const b = new Uint8Array(this.#bs);
    if (held === null) return b;
    this.#base.readAt(i * this.#bs, b);
    return b;
  }

  /** Writes `data` at `offset` into the overlay (never into the base). */
  writeAt(offset: number, data: Uint8Array): void {
    if (offset < 0 || offset + data.length > this.size) {
      throw new RangeError(
        `Overlay write of ${data.length} bytes at ${offset} passes the end (${this.size})`,
      );
    }
    const bs = this.#bs;
    let p = 0;
    while (p < data.length) {
      const abs = offset + p;
      const i = Math.floor(abs / bs), at = abs - i * bs;
      const n = Math.min(bs - at, data.length - p);
      const blk = n === bs ? data.slice(p, p + n) : this.#block(i);
      if (n !== bs) blk.set(data.subarray(p, p + n), at);
      const old = this.#blocks.get(i);
      if (old) this.heldBytes -= old.length;
      if (isZero(blk)) this.#blocks.set(i, null);
      else {
        this.#blocks.set(i, blk);
        this.heldBytes += blk.length;
      }
      p += n;
    }
  }

  /** Reads the base, then lays the changed blocks over it. */
  readAt(offset: number, buf: Uint8Array): number {
    const n = this.#base.readAt(offset, buf);
    if (this.#blocks.size === 0 || n === 0) return n;
    const bs = this.#bs;
    const first = Math.floor(offset / bs), last = Math.floor((offset + n - 1) / bs);
    const patch = (i: number) => {
      if (!this.#blocks.has(i)) return;
      const held = this.#blocks.get(i);
      const start = Math.max(offset, i * bs), end = Math.min(offset + n, (i + 1) * bs);
      if (held === null) buf.fill(0, start - offset, end - offset);
      else buf.set(held!.subarray(start - i * bs, end - i * bs), start - offset);
    };
    if (last - first + 1 <= this.#blocks.size) {
      for (let i = first; i <= last; i++) patch(i);
    } else {
      for (const i of this.#blocks.keys()) if (i >= first && i <= last) patch(i);
    }
    return n;
  }

  /** Closes the base source. */
  close(): void {
    this.#base.close();
  }
}
