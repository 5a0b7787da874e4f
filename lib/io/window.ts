import type { Sink, Source } from "./types.ts";

/**
 * A source that views `[offset, offset + length)` of another source, for e2image's `-o` and
 * filesystems inside partitioned images. Reads past the window's end return short.
 *
 * @example
 * ```ts
 * import { MemorySource } from "./memory.ts";
 * import { WindowSource } from "./window.ts";
 * const w = new WindowSource(new MemorySource(new Uint8Array([0, 1, 2, 3])), 1);
 * const b = new Uint8Array(8);
 * console.assert(w.size === 3 && w.readAt(0, b) === 3 && b[0] === 1);
 * ```
 */
export class WindowSource implements Source {
  readonly #inner: Source;
  readonly #offset: number;
  /** Size of the window in bytes. */
  readonly size: number;
  /** A name for messages. */
  readonly name: string;
  /** Views `inner` from `offset`, for `length` bytes (default: to its end). */
  constructor(inner: Source, offset: number, length?: number) {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Invalid window offset ${offset}`);
    }
    this.#inner = inner;
    this.#offset = offset;
    this.size = Math.max(0, Math.min(length ?? Infinity, inner.size - offset));
    this.name = inner.name;
  }
  /** Reads at `offset` inside the window. */
  readAt(offset: number, buf: Uint8Array): number {
    if (offset >= this.size) return 0;
    const n = Math.min(buf.length, this.size - offset);
    return this.#inner.readAt(this.#offset + offset, buf.subarray(0, n));
  }
  /** Closes the inner source. */
  close(): void {
    this.#inner.close();
  }
}

/**
 * A sink that writes at `offset` inside another sink, for e2image's `-O`. With a `limit`, a
 * write past `offset + limit` is refused with a `RangeError` before anything is written.
 *
 * @example
 * ```ts
 * import { MemorySink } from "./memory.ts";
 * import { WindowSink } from "./window.ts";
 * const inner = new MemorySink();
 * new WindowSink(inner, 512).writeAt(0, new Uint8Array([7]));
 * console.assert(inner.bytes()[512] === 7);
 * ```
 */
export class WindowSink implements Sink {
  readonly #inner: Sink;
  readonly #offset: number;
  readonly #limit: number;
  /** A name for messages. */
  readonly name: string;
  /** Writes into `inner` at `offset`; `limit` caps the window length. */
  constructor(inner: Sink, offset: number, limit?: number) {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Invalid window offset ${offset}`);
    }
    if (inner.kind === "stream" && offset !== 0) {
      throw new TypeError("Cannot write at an offset into a stream");
    }
    this.#inner = inner;
    this.#offset = offset;
    this.#limit = limit ?? (inner.kind === "device" ? inner.size - offset : Infinity);
    this.name = inner.name;
  }
  /** The inner sink's kind. */
  get kind(): "file" | "device" | "stream" {
    return this.#inner.kind;
  }
  /** Size seen through the window. */
  get size(): number {
    return this.#inner.kind === "device"
      ? this.#limit
      : Math.max(0, this.#inner.size - this.#offset);
  }
  /** Writes at `offset` inside the window. */
  writeAt(offset: number, data: Uint8Array): void {
    if (offset + data.length > this.#limit) {
      throw new RangeError(
        `Write of ${data.length} bytes at ${offset} passes the end of the destination window (${this.#limit} bytes)`,
      );
    }
    this.#inner.writeAt(this.#offset + offset, data);
  }
  /** Reads back through the window, when the inner sink can. */
  get readAt(): ((offset: number, buf: Uint8Array) => number) | undefined {
    const r = this.#inner.readAt?.bind(this.#inner);
    return r ? (offset, buf) => r(this.#offset + offset, buf) : undefined;
  }
  /** Truncates the inner file to `offset + length`. */
  get truncate(): ((length: number) => void) | undefined {
    const t = this.#inner.truncate?.bind(this.#inner);
    return t ? (length) => t(this.#offset + length) : undefined;
  }
  /** Flushes the inner sink. */
  sync(): void {
    this.#inner.sync?.();
  }
  /** Closes the inner sink. */
  close(): void {
    this.#inner.close();
  }
}
