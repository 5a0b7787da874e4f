import { ReadError } from "../errors.ts";
import type { ReaderSync, Source, WriterSync } from "./types.ts";

/**
 * Reads exactly `buf.length` bytes at `offset`, or throws {@linkcode ReadError} naming the
 * source and offset when the source ends first.
 *
 * @example
 * ```ts
 * import { MemorySource } from "./memory.ts";
 * import { readFully } from "./util.ts";
 * const buf = new Uint8Array(2);
 * readFully(new MemorySource(new Uint8Array(4)), 2, buf);
 * ```
 */
export function readFully(source: Source, offset: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) {
    const n = source.readAt(offset + done, buf.subarray(done));
    if (n <= 0) {
      throw new ReadError(
        source.name,
        offset + done,
        buf.length - done,
        `unexpected end of data (source is ${source.size} bytes)`,
      );
    }
    done += n;
  }
}

/** Reads `length` bytes at `offset` into a new buffer (see {@linkcode readFully}). */
export function readBytes(source: Source, offset: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  readFully(source, offset, b);
  return b;
}

/**
 * Writes all of `data` to a writer that may write short (as `Deno.stdout.writeSync` does).
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./util.ts";
 * const parts: number[] = [];
 * writeAllSync({ writeSync: (p) => (parts.push(Math.min(2, p.length)), Math.min(2, p.length)) },
 *   new Uint8Array(5));
 * console.assert(parts.join() === "2,2,1");
 * ```
 */
export function writeAllSync(w: WriterSync, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    const n = w.writeSync(data.subarray(off));
    if (n <= 0) throw new Error("Writer accepted no bytes");
    off += n;
  }
}

/**
 * Fills `buf` from a sequential reader; returns the count, short only at end of stream.
 *
 * @example
 * ```ts
 * import { readFullSync } from "./util.ts";
 * let left = 3;
 * const r = { readSync: (p: Uint8Array) => (left ? (left--, p[0] = 7, 1) : null) };
 * console.assert(readFullSync(r, new Uint8Array(5)) === 3);
 * ```
 */
export function readFullSync(r: ReaderSync, buf: Uint8Array): number {
  let done = 0;
  while (done < buf.length) {
    const n = r.readSync(buf.subarray(done));
    if (n === null || n === 0) break;
    done += n;
  }
  return done;
}
