import type { Sink, Source } from "./types.ts";

/**
 * A source over an in-memory buffer (tests, fuzzing, library users without files).
 *
 * @example
 * ```ts
 * import { MemorySource } from "./memory.ts";
 * const src = new MemorySource(new Uint8Array([1, 2, 3, 4]));
 * const buf = new Uint8Array(2);
 * console.assert(src.readAt(2, buf) === 2 && buf[0] === 3);
 * ```
 */
export class MemorySource implements Source {
  /** The backing bytes. */
  readonly bytes: Uint8Array;
  /** A name for messages. */
  readonly name: string;
  /** Wraps `bytes` (not copied). */
  constructor(bytes: Uint8Array, name = "memory") {
    this.bytes = bytes;
    this.name = name;
  }
  /** Size in bytes. */
  get size(): number {
    return this.bytes.length;
  }
  /** Copies bytes at `offset` into `buf`; short only at the end. */
  readAt(offset: number, buf: Uint8Array): number {
    if (offset < 0 || !Number.isSafeInteger(offset)) {
      throw new RangeError(`Invalid offset ${offset}`);
    }
    if (offset >= this.bytes.length) return 0;
    const n = Math.min(buf.length, this.bytes.length - offset);
    buf.set(this.bytes.subarray(offset, offset + n));
    return n;
  }
  /** Does nothing. */
  close(): void {}
}

/**
 * A growable in-memory sink. As a `"file"` it supports holes (zeros) and truncation; as a
 * `"device"` it has a fixed capacity; as a `"stream"` it accepts appends only. It records every
 * write, so tests can check exactly what was written where.
 *
 * @example
 * ```ts
 * import { MemorySink } from "./memory.ts";
 * const s = new MemorySink();
 * s.writeAt(4, new Uint8Array([9]));
 * console.assert(s.size === 5 && s.bytes()[4] === 9 && s.writes.length === 1);
 * ```
 */
export class MemorySink implements Sink {
  /** A name for messages. */
  readonly name: string;
  /** The kind of sink simulated. */
  readonly kind: "file" | "device" | "stream";
  /** Every write as `[offset, length]`, in order. */
  readonly writes: Array<[number, number]> = [];
  #buf: Uint8Array;
  #len: number;

  /**
   * Creates an empty file-like sink, or a device of `capacity` bytes (pre-filled with `fill`),
   * or a stream.
   */
  constructor(
    options: {
      kind?: "file" | "device" | "stream";
      capacity?: number;
      fill?: number;
      name?: string;
    } = {},
  ) {
    this.kind = options.kind ?? "file";
    this.name = options.name ?? "memory";
    const cap = options.capacity ?? 0;
    this.#buf = new Uint8Array(Math.max(cap, 4096));
    if (options.fill) this.#buf.fill(options.fill, 0, cap);
    this.#len = this.kind === "stream" ? 0 : cap;
  }
  /** Current length (device: capacity; stream: bytes written). */
  get size(): number {
    return this.#len;
  }
  /** A view of the current contents. */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
  #grow(n: number): void {
    if (n <= this.#buf.length) return;
    const b = new Uint8Array(Math.max(n, this.#buf.length * 2));
    b.set(this.#buf.subarray(0, this.#len));
    this.#buf = b;
  }
  /** Writes `data` at `offset` (see {@linkcode Sink.writeAt}). */
  writeAt(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (this.kind === "stream" && offset !== this.#len) {
      throw new RangeError(`Stream sink written at ${offset}, expected ${this.#len}`);
    }
    if (this.kind === "device" && end > this.#len) {
      throw new RangeError(
        `Write of ${data.length} bytes at ${offset} passes the device end (${this.#len})`,
      );
    }
    this.#grow(end);
    this.#buf.set(data, offset);
    if (end > this.#len) this.#len = end;
    this.writes.push([offset, data.length]);
  }
  /** Reads back written bytes. */
  readAt(offset: number, buf: Uint8Array): number {
    if (offset >= this.#len) return 0;
    const n = Math.min(buf.length, this.#len - offset);
    buf.set(this.#buf.subarray(offset, offset + n));
    return n;
  }
  /** Sets the length (file kind only). */
  truncate(length: number): void {
    if (this.kind !== "file") throw new TypeError(`Cannot truncate a ${this.kind} sink`);
    this.#grow(length);
    if (length < this.#len) this.#buf.fill(0, length, this.#len);
    this.#len = length;
  }
  /** Does nothing. */
  close(): void {}
}
