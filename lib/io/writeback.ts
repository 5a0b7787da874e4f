/**
 * Early writeback for long copies that end with a sync (ntfsclone always does). Linux keeps up to
 * a tenth of the free memory dirty before it starts writing a file back in the background, so a
 * copy of a few GiB otherwise ends with the whole output still in memory and its final `fsync`
 * waits for all of it. {@linkcode WritebackSink} asks for an asynchronous `fdatasync` each time
 * another `step` bytes have been written: the disk then writes while the copy goes on, and the
 * final sync finds little left to do. Nothing changes in what is written or when the data is
 * stable: only the final sync is a promise of durability, as before.
 *
 * @module
 */
import type { Sink, SinkKind } from "./types.ts";

/** Bytes written between two background flushes, by default. */
export const DEFAULT_WRITEBACK_STEP = 256 << 20;

/** Options of {@linkcode WritebackSink}. */
export interface WritebackOptions {
  /** Bytes written between two background flushes (default {@linkcode DEFAULT_WRITEBACK_STEP}). */
  step?: number;
}

/**
 * A {@linkcode Sink} that forwards everything to `inner` and, every `step` bytes written, starts
 * `inner.syncDataAsync()` without waiting for it. Call {@linkcode WritebackSink.settle} before the
 * final sync: it waits for the flushes still running and throws the first error any of them met
 * (an error one flush reports may not be reported again to the next, so none may be dropped).
 * A sink without `syncDataAsync` (memory, a pipe) is passed through unchanged.
 *
 * @example
 * ```ts
 * import { MemorySink } from "./memory.ts";
 * import { WritebackSink } from "./writeback.ts";
 * let flushes = 0;
 * const inner = Object.assign(new MemorySink(), {
 *   syncDataAsync: () => (flushes++, Promise.resolve()),
 * });
 * const out = new WritebackSink(inner, { step: 1024 });
 * for (let i = 0; i < 4; i++) out.writeAt(i * 512, new Uint8Array(512));
 * await out.settle();
 * console.assert(flushes === 2 && inner.size === 2048);
 * ```
 */
export class WritebackSink implements Sink {
  /** The sink written to. */
  readonly inner: Sink;
  /** Reads back from `inner` when it can. */
  readonly readAt?: (offset: number, buf: Uint8Array) => number;
  /** Sets `inner`'s length when it can. */
  readonly truncate?: (length: number) => void;
  #step: number;
  #since = 0;
  #pending = new Set<Promise<void>>();
  #error: { e: unknown } | undefined;
  #flushes = 0;

  /** Wraps `inner`; see {@linkcode WritebackOptions}. */
  constructor(inner: Sink, options: WritebackOptions = {}) {
    const step = options.step ?? DEFAULT_WRITEBACK_STEP;
    if (!(step > 0)) throw new RangeError(`step must be positive, found ${step}`);
    this.inner = inner;
    this.#step = step;
    if (inner.readAt) this.readAt = (offset, buf) => inner.readAt!(offset, buf);
    if (inner.truncate) this.truncate = (length) => inner.truncate!(length);
  }
  /** The name of `inner`. */
  get name(): string {
    return this.inner.name;
  }
  /** The kind of `inner`. */
  get kind(): SinkKind {
    return this.inner.kind;
  }
  /** The size of `inner`. */
  get size(): number {
    return this.inner.size;
  }
  /** How many background flushes were started. */
  get flushes(): number {
    return this.#flushes;
  }
  /** Writes through, then starts a background flush when `step` more bytes were written. */
  writeAt(offset: number, data: Uint8Array): void {
    this.inner.writeAt(offset, data);
    this.#since += data.length;
    if (this.#since < this.#step || !this.inner.syncDataAsync) return;
    this.#since = 0;
    this.#flushes++;
    const p: Promise<void> = this.inner.syncDataAsync()
      .catch((e) => {
        this.#error ??= { e };
      })
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }
  /** Waits for the background flushes; throws the first error one of them met. */
  async settle(): Promise<void> {
    while (this.#pending.size) await Promise.all([...this.#pending]);
    if (this.#error) throw this.#error.e;
  }
  /** The final sync of `inner` (call {@linkcode WritebackSink.settle} first). */
  sync(): void {
    if (this.#error) throw this.#error.e;
    this.inner.sync?.();
  }
  /** Closes `inner`. */
  close(): void {
    this.inner.close();
  }
}
