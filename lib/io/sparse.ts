/**
 * The sparse raw writer: copy a sorted list of byte extents from a source to the same offsets
 * of a sink, making holes of everything else. One engine serves every output kind:
 *
 * - a regular file: holes by skipping (never writing zeros), then the exact final length;
 * - a pipe: zeros streamed for the holes in large chunks, so the stream is the whole image;
 * - a block device: only the extents are written, what lies between is left untouched.
 *
 * and the e2image modes: check-before-write (`-c`), no-op (`-n`), in-place moves in the safe
 * direction, per-block transforms (`-s`), and per-block read-error recovery.
 *
 * @module
 */
import type { ByteExtent } from "../_internal/extents.ts";
import { validateExtents } from "../_internal/extents.ts";
import { isZero } from "../_internal/bytes.ts";
import { ReadError } from "../errors.ts";
import type { Sink, Source } from "./types.ts";

/** Options of {@linkcode copyExtents}. */
export interface CopyExtentsOptions {
  /**
   * The logical size of the image in bytes. A stream receives exactly this many bytes; a file
   * gets this length (see {@linkcode CopyExtentsOptions.setLength}); a device must hold it.
   * Defaults to the source size.
   */
  size?: number;
  /**
   * How a file sink's final length is set: `"exact"` (default: extend or shrink to `size`),
   * `"extend"` (only grow, never cut what follows), `"none"`.
   */
  setLength?: "exact" | "extend" | "none";
  /** Granularity of zero detection, `-c` comparison and the callbacks; default 4096. */
  blockSize?: number;
  /**
   * Leave all-zero blocks as holes instead of writing them (a new file). Ignored for streams,
   * which always carry every byte. Default: true for a file sink, false for a device.
   */
  skipZeroBlocks?: boolean;
  /** Read the destination first and write only blocks whose bytes differ (e2image `-c`). */
  checkBeforeWrite?: boolean;
  /** Write nothing at all (e2image `-n`); {@linkcode CopyExtentsOptions.onWrite} still reports. */
  dryRun?: boolean;
  /**
   * Order of the copy. `"backward"` copies from the highest extent down, so a move to a higher
   * offset inside the same file never overwrites data not yet read. Default `"forward"`.
   */
  direction?: "forward" | "backward";
  /** Bytes per read/write batch (rounded to `blockSize`); default 4 MiB. */
  bufferSize?: number;
  /** Changes a block in place before it is written (e2image `-s` scrambling). */
  transform?: (offset: number, block: Uint8Array) => void;
  /** Called for each block written (or that would be, under `dryRun`), in copy order. */
  onWrite?: (offset: number, length: number) => void;
  /**
   * Called when a block cannot be read (an I/O error or the source ending early). Return
   * `true` to go on with a zero-filled block, `false` to rethrow. Without it, errors throw.
   */
  onReadError?: (error: ReadError, offset: number, length: number) => boolean;
  /** Progress: bytes of extents processed so far, of the total. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@linkcode copyExtents} did. */
export interface CopyExtentsResult {
  /** Bytes read from the source. */
  bytesRead: number;
  /** Bytes of extent data written to the sink (hole zeros for streams not included). */
  bytesWritten: number;
  /** Blocks not written because the destination already held them (`checkBeforeWrite`). */
  blocksIdentical: number;
  /** Blocks left as holes because they were all zero. */
  blocksZero: number;
  /** Blocks whose read failed and were replaced by zeros. */
  blocksUnreadable: number;
}

const ZERO_CHUNK = new Uint8Array(1 << 20);

function writeZeros(sink: Sink, offset: number, length: number): void {
  while (length > 0) {
    const n = Math.min(length, ZERO_CHUNK.length);
    sink.writeAt(offset, ZERO_CHUNK.subarray(0, n));
    offset += n;
    length -= n;
  }
}

/**
 * Copies `extents` (sorted, non-overlapping byte ranges of `source`) to the same offsets of
 * `sink`. See the module documentation for how each sink kind is treated.
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "./mod.ts";
 * import { copyExtents } from "./sparse.ts";
 * const src = new MemorySource(new Uint8Array(8192).fill(1));
 * const out = new MemorySink({ kind: "stream" });
 * copyExtents(src, out, [{ offset: 4096, length: 4096 }]);
 * console.assert(out.size === 8192 && out.bytes()[0] === 0 && out.bytes()[4096] === 1);
 * ```
 */
export function copyExtents(
  source: Source,
  sink: Sink,
  extents: readonly ByteExtent[],
  options: CopyExtentsOptions = {},
): CopyExtentsResult {
  const size = options.size ?? source.size;
  const bs = options.blockSize ?? 4096;
  if (!Number.isSafeInteger(bs) || bs <= 0) throw new RangeError(`Invalid block size ${bs}`);
  validateExtents(extents, size);
  const stream = sink.kind === "stream";
  if (stream && options.direction === "backward") {
    throw new TypeError("A backward copy cannot write to a stream");
  }
  if (stream && options.checkBeforeWrite) {
    throw new TypeError("Check-before-write cannot read back from a stream");
  }
  if (sink.kind === "device" && !options.dryRun && size > sink.size) {
    throw new RangeError(
      `${sink.name} is too small: ${sink.size} bytes, the image needs ${size} bytes`,
    );
  }
  const skipZero = !stream && (options.skipZeroBlocks ?? sink.kind === "file");
  const dry = options.dryRun ?? false;
  const bufSize = Math.max(bs, Math.floor((options.bufferSize ?? 4 << 20) / bs) * bs);
  const buf = new Uint8Array(bufSize);
  const cmp = options.checkBeforeWrite ? new Uint8Array(bufSize) : undefined;
  const res: CopyExtentsResult = {
    bytesRead: 0,
    bytesWritten: 0,
    blocksIdentical: 0,
    blocksZero: 0,
    blocksUnreadable: 0,
  };
  let total = 0;
  for (const e of extents) total += e.length;
  let done = 0;
  let streamPos = 0; // stream sinks: next byte to emit

  const readChunk = (off: number, chunk: Uint8Array): void => {
    try {
      const n = source.readAt(off, chunk);
      res.bytesRead += n;
      if (n === chunk.length) return;
      throw new ReadError(
        source.name,
        off + n,
        chunk.length - n,
        "short read past the end of the source",
      );
    } catch (err) {
      if (!(err instanceof ReadError) || !options.onReadError) throw err;
    }
    // Retry block by block so only the bad blocks are lost.
    for (let p = 0; p < chunk.length; p += bs) {
      const blk = chunk.subarray(p, Math.min(p + bs, chunk.length));
      let err: ReadError | undefined;
      try {
        const n = source.readAt(off + p, blk);
        res.bytesRead += n;
        if (n < blk.length) {
          blk.fill(0, n);
          err = new ReadError(source.name, off + p + n, blk.length - n, "short read");
        }
      } catch (e) {
        if (!(e instanceof ReadError)) throw e;
        blk.fill(0);
        err = e;
      }
      if (err) {
        res.blocksUnreadable++;
        if (!options.onReadError!(err, off + p, blk.length)) throw err;
      }
    }
  };

  // Writes the blocks of `chunk` (at absolute `off`) that must be written, merging runs.
  const emit = (off: number, chunk: Uint8Array): void => {
    if (stream) {
      if (off > streamPos) writeZeros(sink, streamPos, off - streamPos);
      if (options.onWrite) {
        for (let p = 0; p < chunk.length; p += bs) {
          options.onWrite(off + p, Math.min(bs, chunk.length - p));
        }
      }
      if (!dry) sink.writeAt(off, chunk);
      streamPos = off + chunk.length;
      res.bytesWritten += chunk.length;
      return;
    }
    if (!skipZero && !cmp && !options.onWrite) {
      // Nothing to decide block by block: one write for the whole batch.
      if (!dry) sink.writeAt(off, chunk);
      res.bytesWritten += chunk.length;
      return;
    }
    let cmpLen = 0;
    if (cmp) {
      cmpLen = sink.readAt!(off, cmp.subarray(0, chunk.length));
    }
    let runStart = -1;
    const flush = (end: number) => {
      if (runStart < 0) return;
      if (!dry) sink.writeAt(off + runStart, chunk.subarray(runStart, end));
      res.bytesWritten += end - runStart;
      runStart = -1;
    };
    for (let p = 0; p < chunk.length; p += bs) {
      const q = Math.min(p + bs, chunk.length);
      const blk = chunk.subarray(p, q);
      let write = true;
      if (skipZero && isZero(blk)) {
        res.blocksZero++;
        write = false;
      } else if (cmp && q <= cmpLen && equalBytes(blk, cmp.subarray(p, q))) {
        res.blocksIdentical++;
        write = false;
      }
      if (write) {
        options.onWrite?.(off + p, q - p);
        if (runStart < 0) runStart = p;
      } else flush(p);
    }
    flush(chunk.length);
  };

  const doChunk = (off: number, len: number): void => {
    const chunk = buf.subarray(0, len);
    readChunk(off, chunk);
    if (options.transform) {
      for (let p = 0; p < len; p += bs) {
        options.transform(off + p, chunk.subarray(p, Math.min(p + bs, len)));
      }
    }
    emit(off, chunk);
    done += len;
    options.onProgress?.(done, total);
  };

  if (options.direction === "backward") {
    for (let i = extents.length - 1; i >= 0; i--) {
      const e = extents[i]!;
      let end = e.offset + e.length;
      while (end > e.offset) {
        const start = Math.max(e.offset, end - bufSize);
        doChunk(start, end - start);
        end = start;
      }
    }
  } else {
    for (const e of extents) {
      for (let p = 0; p < e.length; p += bufSize) {
        doChunk(e.offset + p, Math.min(bufSize, e.length - p));
      }
    }
  }

  if (stream) {
    if (size > streamPos && !dry) writeZeros(sink, streamPos, size - streamPos);
  } else if (sink.kind === "file" && !dry) {
    const mode = options.setLength ?? "exact";
    if (mode === "exact" && sink.size !== size) sink.truncate!(size);
    else if (mode === "extend" && sink.size < size) sink.truncate!(size);
  }
  return res;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Options of {@linkcode copyStream}. */
export interface CopyStreamOptions {
  /** Zero-detection granularity; default 4096. */
  blockSize?: number;
  /** Leave all-zero blocks as holes (file sinks only); default true for files. */
  skipZeroBlocks?: boolean;
  /** Stop after this many bytes; default: to the end of the input. */
  limit?: number;
  /** Bytes per batch; default 4 MiB. */
  bufferSize?: number;
  /** Set a file sink's final length to the bytes copied; default true. */
  setLength?: boolean;
  /** Progress: bytes copied so far. */
  onProgress?: (done: number) => void;
}

/**
 * Copies a sequential input (a pipe) to the start of `sink`, sparsely: all-zero blocks become
 * holes in a file sink. Returns the number of bytes copied.
 *
 * @example
 * ```ts
 * import { MemorySink } from "./memory.ts";
 * import { copyStream } from "./sparse.ts";
 * let sent = false;
 * const input = { readSync: (p: Uint8Array) => sent ? null : (sent = true, p.fill(1, 0, 10), 10) };
 * const out = new MemorySink();
 * console.assert(copyStream(input, out) === 10 && out.size === 10);
 * ```
 */
export function copyStream(
  input: { readSync(p: Uint8Array): number | null },
  sink: Sink,
  options: CopyStreamOptions = {},
): number {
  const bs = options.blockSize ?? 4096;
  const bufSize = Math.max(bs, Math.floor((options.bufferSize ?? 4 << 20) / bs) * bs);
  const buf = new Uint8Array(bufSize);
  const skipZero = sink.kind === "file" && (options.skipZeroBlocks ?? true);
  const limit = options.limit ?? Infinity;
  let pos = 0;
  for (;;) {
    // Fill the buffer completely (pipes return at most 64 KiB per read).
    let fill = 0;
    const want = Math.min(bufSize, limit - pos);
    while (fill < want) {
      const n = input.readSync(buf.subarray(fill, want));
      if (n === null || n === 0) break;
      fill += n;
    }
    if (fill === 0) break;
    if (sink.kind === "device" && pos + fill > sink.size) {
      throw new RangeError(`${sink.name} is too small: ${sink.size} bytes, the input is longer`);
    }
    if (!skipZero) sink.writeAt(pos, buf.subarray(0, fill));
    else {
      let run = -1;
      for (let p = 0; p <= fill; p += bs) {
        const q = Math.min(p + bs, fill);
        const zero = p === fill || isZero(buf.subarray(p, q));
        if (!zero && run < 0) run = p;
        if (zero && run >= 0) {
          sink.writeAt(pos + run, buf.subarray(run, p));
          run = -1;
        }
        if (p === fill) break;
      }
      if (run >= 0) sink.writeAt(pos + run, buf.subarray(run, fill));
    }
    pos += fill;
    options.onProgress?.(pos);
    if (fill < want || pos >= limit) break;
  }
  if (sink.kind === "file" && (options.setLength ?? true) && sink.size !== pos) sink.truncate!(pos);
  return pos;
}
