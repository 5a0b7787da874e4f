import { ReadError } from "../errors.ts";
import type { ByteExtent } from "../_internal/extents.ts";
import type { Source } from "./types.ts";

/**
 * A source that fails reads touching given byte ranges, as a dying disk does: the stand-in
 * for a device-mapper `error` target in tests of read-error handling and rescue modes.
 *
 * @example
 * ```ts
 * import { MemorySource } from "./memory.ts";
 * import { FaultySource } from "./faulty.ts";
 * const s = new FaultySource(new MemorySource(new Uint8Array(4096)), [{ offset: 512, length: 512 }]);
 * let failed = false;
 * try { s.readAt(0, new Uint8Array(1024)); } catch { failed = true; }
 * console.assert(failed && s.readAt(0, new Uint8Array(512)) === 512);
 * ```
 */
export class FaultySource implements Source {
  readonly #inner: Source;
  readonly #bad: readonly ByteExtent[];
  /** Number of reads that failed so far. */
  failures = 0;
  /** Wraps `inner`; reads overlapping any of `bad` throw {@linkcode ReadError}. */
  constructor(inner: Source, bad: readonly ByteExtent[]) {
    this.#inner = inner;
    this.#bad = bad;
  }
  /** The inner source's name. */
  get name(): string {
    return this.#inner.name;
  }
  /** The inner source's size. */
  get size(): number {
    return this.#inner.size;
  }
  /** Reads, or throws when the range touches a bad extent. */
  readAt(offset: number, buf: Uint8Array): number {
    const end = offset + buf.length;
    for (const b of this.#bad) {
      if (b.offset < end && offset < b.offset + b.length) {
        this.failures++;
        const at = Math.max(offset, b.offset);
        const cause = Object.assign(new Error("Input/output error"), { code: "EIO" });
        throw new ReadError(this.name, at, buf.length, "Input/output error", { cause });
      }
    }
    return this.#inner.readAt(offset, buf);
  }
  /** Closes the inner source. */
  close(): void {
    this.#inner.close();
  }
}
