/**
 * Decoding the body of an ntfsclone special image: after the header comes a stream of commands,
 *
 * - `0x01` CMD_NEXT, then the payload of the cluster at the current position (a whole cluster,
 *   or what is left of the device for the cluster that reaches `device_size`); position + 1;
 * - `0x00` CMD_GAP, then a signed little-endian 64-bit count of clusters to skip (negative
 *   counts occur in metadata images); position + count, which must stay in `[0, nr_clusters]`.
 *
 * The stream ends after the NEXT of cluster `nr_clusters` (the backup boot sector); anything
 * after it is ignored. An image that ends exactly when the position is `nr_clusters` lacks the
 * backup-boot record (format 10.0): that is accepted and reported by
 * {@linkcode NtfscloneImageReader.missingBackupBoot}.
 *
 * One push-driven state machine does the work for both the synchronous
 * {@linkcode NtfscloneImageReader} (pipes, files: the CLI's fast path) and the web
 * {@linkcode NtfscloneDecoderStream}. Consecutive clusters are delivered in batches whose
 * boundaries depend only on the command stream (never on how the input was chunked).
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { hex } from "../_internal/bytes.ts";
import type { ReaderSync } from "../io/types.ts";
import {
  checkNtfscloneMagic,
  NTFSCLONE_HEADER_FIELDS_SIZE,
  NTFSCLONE_LEGACY_HEADER_SIZE,
  NTFSCLONE_MAX_DATA_OFFSET,
  type NtfscloneHeader,
  parseNtfscloneHeader,
} from "./header.ts";

/** A run of consecutive stored clusters starting at cluster `lcn`. */
export interface NtfscloneClustersCommand {
  /** Discriminant. */
  kind: "clusters";
  /** First cluster of the run. */
  lcn: number;
  /** Number of clusters in the run (≥ 1). */
  count: number;
  /**
   * The payloads, back to back: whole clusters, except that the run may end with the shorter
   * payload of the cluster that reaches the device end.
   */
  data: Uint8Array;
}

/** A CMD_GAP: the position moves by `count` clusters (negative in metadata images). */
export interface NtfscloneGapCommand {
  /** Discriminant. */
  kind: "gap";
  /** Position before the gap. */
  lcn: number;
  /** Clusters skipped, never 0. */
  count: number;
}

/** One decoded unit of the command stream. */
export type NtfscloneCommand = NtfscloneClustersCommand | NtfscloneGapCommand;

/** What {@linkcode NtfscloneDecoderStream} emits: first the header, then the commands. */
export type NtfscloneRecord = { kind: "header"; header: NtfscloneHeader } | NtfscloneCommand;

/** Default size of a cluster batch: 4 MiB (at least one cluster). */
export const DEFAULT_BATCH_SIZE: number = 4 << 20;

const enum Phase {
  Header,
  Command,
  Payload,
  GapCount,
  Done,
}

/** " <name>" for messages, or nothing. */
function label(name: string): string {
  return name ? ` ${name}` : "";
}

function truncated(name: string, at: number, what: string): CorruptImageError {
  return new CorruptImageError(
    `Cannot read ntfsclone image${label(name)}: it ends at byte ${hex(at)}, inside ${what}`,
    {
      format: "ntfsclone",
      structure: "command stream",
      offset: at,
      compat: "Short image file...",
    },
  );
}

/**
 * The push-driven decoder shared by the reader and the stream. Feed bytes with `step` until it
 * reports an event; `finish` at the end of the input.
 * @internal
 */
export class NtfscloneDecoderCore {
  readonly #name: string;
  readonly #batchSize: number;
  readonly #copy: boolean;
  #phase = Phase.Header;
  #hdr = new Uint8Array(64);
  #hdrLen = 0;
  #hdrWant = 18;
  #header: NtfscloneHeader | null = null;
  #cs = 0;
  #nr = 0;
  #dev = 0;
  #inOff = 0;
  #cmdOff = 0;
  #pos = 0;
  #payloadLeft = 0;
  #gap = new Uint8Array(8);
  #gapHave = 0;
  #batch = new Uint8Array(0);
  #batchLen = 0;
  #batchCount = 0;
  #batchLcn = 0;
  #event: NtfscloneRecord | null = null;
  #missingBackup = false;
  #clusters = 0;
  #gaps = 0;

  /** `copy`: events own their data (streams); otherwise data views are reused. */
  constructor(name: string, batchSize: number, copy: boolean) {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`Invalid batchSize ${batchSize}`);
    }
    this.#name = name;
    this.#batchSize = batchSize;
    this.#copy = copy;
  }

  /** The header, once decoded. */
  get header(): NtfscloneHeader | null {
    return this.#header;
  }
  /** Image bytes consumed so far. */
  get offset(): number {
    return this.#inOff;
  }
  /** Current cluster position. */
  get position(): number {
    return this.#pos;
  }
  /** True when the image ended without the backup-boot record. */
  get missingBackupBoot(): boolean {
    return this.#missingBackup;
  }
  /** True once the end of the command stream was reached. */
  get done(): boolean {
    return this.#phase === Phase.Done && this.#event === null && this.#batchCount === 0;
  }
  /** NEXT records decoded. */
  get clusterCount(): number {
    return this.#clusters;
  }
  /** GAP records decoded. */
  get gapCount(): number {
    return this.#gaps;
  }

  /** Takes the pending event, if any. */
  take(): NtfscloneRecord | null {
    const e = this.#event;
    this.#event = null;
    return e;
  }

  #headerStep(): void {
    const h = this.#hdr;
    if (this.#hdrLen === 18 && this.#hdrWant === 18) {
      // Fail early on a wrong magic, then learn the header size from the version byte.
      checkNtfscloneMagic(h.subarray(0, 16));
      this.#hdrWant = h[16]! < 10 ? NTFSCLONE_LEGACY_HEADER_SIZE : NTFSCLONE_HEADER_FIELDS_SIZE;
      if (this.#hdrWant > this.#hdrLen) return;
    }
    if (this.#hdrWant === NTFSCLONE_HEADER_FIELDS_SIZE && h[16]! >= 10) {
      const off = (h[46]! | (h[47]! << 8) | (h[48]! << 16) | (h[49]! << 24)) >>> 0;
      if (off > NTFSCLONE_MAX_DATA_OFFSET) parseNtfscloneHeader(h.subarray(0, 50)); // throws
      if (off > this.#hdrLen) {
        this.#hdrWant = off;
        if (h.length < off) {
          const g = new Uint8Array(off);
          g.set(h.subarray(0, this.#hdrLen));
          this.#hdr = g;
        }
        return;
      }
    }
    const header = parseNtfscloneHeader(this.#hdr.subarray(0, this.#hdrLen));
    this.#header = header;
    this.#cs = header.clusterSize;
    this.#nr = header.nrClusters;
    this.#dev = header.deviceSize;
    // Never more than the whole restored device (small images stay cheap).
    const clusters = Math.min(Math.floor(this.#batchSize / this.#cs), this.#nr + 1);
    const cap = Math.max(1, clusters) * this.#cs;
    this.#batch = new Uint8Array(cap);
    this.#phase = Phase.Command;
    this.#event = { kind: "header", header };
  }

  #emitBatch(): void {
    const data = this.#copy
      ? this.#batch.slice(0, this.#batchLen)
      : this.#batch.subarray(0, this.#batchLen);
    this.#event = { kind: "clusters", lcn: this.#batchLcn, count: this.#batchCount, data };
    this.#batchLen = 0;
    this.#batchCount = 0;
  }

  #clusterDone(): void {
    this.#batchCount++;
    this.#clusters++;
    this.#pos++;
    this.#phase = Phase.Command;
    if (this.#pos > this.#nr) {
      this.#phase = Phase.Done;
      this.#emitBatch();
    } else if (this.#batchLen + this.#cs > this.#batch.length) this.#emitBatch();
  }

  #gapDone(): void {
    const g = this.#gap;
    const lo = (g[0]! | (g[1]! << 8) | (g[2]! << 16) | (g[3]! << 24)) >>> 0;
    const hi = g[4]! | (g[5]! << 8) | (g[6]! << 16) | (g[7]! << 24); // signed
    const count = hi * 0x100000000 + lo; // exact while |count| < 2^53
    const at = this.#cmdOff;
    if (count === 0) {
      throw new CorruptImageError(
        `Cannot read ntfsclone image${label(this.#name)}: gap of 0 clusters at byte ${hex(at)}`,
        {
          format: "ntfsclone",
          structure: "command stream",
          field: "gap count",
          offset: at,
          expected: "a non-zero count",
          actual: "0",
          compat: `Bad offset at input location ${hex(at)}`,
        },
      );
    }
    const target = this.#pos + count;
    if (!Number.isSafeInteger(count) || target < 0 || target > this.#nr) {
      const exact = BigInt.asIntN(64, new DataView(g.buffer).getBigUint64(0, true));
      throw new CorruptImageError(
        `Cannot read ntfsclone image${label(this.#name)}: gap of ${exact} clusters at byte ${
          hex(at)
        } moves cluster ${this.#pos} outside the volume (0 to ${this.#nr})`,
        {
          format: "ntfsclone",
          structure: "command stream",
          field: "gap count",
          offset: at,
          expected: `a count from ${-this.#pos} to ${this.#nr - this.#pos}`,
          actual: exact.toString(),
          compat: `restore_image: corrupt image at input offset ${at}`,
        },
      );
    }
    this.#event = { kind: "gap", lcn: this.#pos, count };
    this.#gaps++;
    this.#pos = target;
    this.#phase = Phase.Command;
  }

  /**
   * Consumes bytes of `chunk[off, end)` until an event is ready or the chunk is used up;
   * returns the new `off`. Bytes after the end of the command stream are skipped.
   */
  step(chunk: Uint8Array, off: number, end: number): number {
    while (off < end && this.#event === null) {
      switch (this.#phase) {
        case Phase.Command: {
          const b = chunk[off]!;
          if (b === 1) {
            this.#cmdOff = this.#inOff;
            off++;
            this.#inOff++;
            if (this.#batchCount === 0) this.#batchLcn = this.#pos;
            const p = this.#pos;
            this.#payloadLeft = (p + 1) * this.#cs >= this.#dev
              ? this.#dev - p * this.#cs
              : this.#cs;
            this.#phase = Phase.Payload;
            if (this.#payloadLeft === 0) this.#clusterDone();
          } else if (b === 0) {
            if (this.#batchCount > 0) {
              this.#emitBatch();
              break;
            }
            this.#cmdOff = this.#inOff;
            off++;
            this.#inOff++;
            this.#gapHave = 0;
            this.#phase = Phase.GapCount;
          } else {
            const at = this.#inOff;
            throw new CorruptImageError(
              `Cannot read ntfsclone image${
                label(this.#name)
              }: command byte must be 0x00 (gap) or 0x01 (cluster), found 0x${
                b.toString(16).padStart(2, "0")
              } (byte ${hex(at)})`,
              {
                format: "ntfsclone",
                structure: "command stream",
                field: "command",
                offset: at,
                expected: "0x00 or 0x01",
                actual: hex(b),
                compat: `Invalid command code ${(b << 24) >> 24} at input offset ${hex(at)}`,
              },
            );
          }
          break;
        }
        case Phase.Payload: {
          const n = Math.min(this.#payloadLeft, end - off);
          this.#batch.set(chunk.subarray(off, off + n), this.#batchLen);
          this.#batchLen += n;
          this.#payloadLeft -= n;
          off += n;
          this.#inOff += n;
          if (this.#payloadLeft === 0) this.#clusterDone();
          break;
        }
        case Phase.GapCount: {
          const n = Math.min(8 - this.#gapHave, end - off);
          this.#gap.set(chunk.subarray(off, off + n), this.#gapHave);
          this.#gapHave += n;
          off += n;
          this.#inOff += n;
          if (this.#gapHave === 8) this.#gapDone();
          break;
        }
        case Phase.Header: {
          const n = Math.min(this.#hdrWant - this.#hdrLen, end - off);
          this.#hdr.set(chunk.subarray(off, off + n), this.#hdrLen);
          this.#hdrLen += n;
          off += n;
          this.#inOff += n;
          if (this.#hdrLen === this.#hdrWant) this.#headerStep();
          break;
        }
        case Phase.Done:
          return end;
      }
    }
    return off;
  }

  /**
   * Signals the end of the input: returns a last pending event (call again until `null`), or
   * throws {@linkcode CorruptImageError} when the image is truncated.
   */
  finish(): NtfscloneRecord | null {
    const e = this.take();
    if (e) return e;
    switch (this.#phase) {
      case Phase.Done:
        return null;
      case Phase.Header:
        // Reports a wrong magic or a short header with ntfsclone's wording.
        parseNtfscloneHeader(this.#hdr.subarray(0, this.#hdrLen));
        throw truncated(this.#name, this.#inOff, `the ${this.#hdrWant}-byte header`);
      case Phase.Command:
        if (this.#batchCount > 0) {
          this.#emitBatch();
          return this.take();
        }
        if (this.#pos === this.#nr) {
          this.#missingBackup = true;
          this.#phase = Phase.Done;
          return null;
        }
        throw truncated(
          this.#name,
          this.#inOff,
          `the command stream at cluster ${this.#pos} of ${this.#nr}`,
        );
      case Phase.Payload:
        throw truncated(
          this.#name,
          this.#inOff,
          `the payload of cluster ${this.#pos} (record at byte ${hex(this.#cmdOff)})`,
        );
      case Phase.GapCount:
        throw truncated(
          this.#name,
          this.#inOff,
          `the count of the gap at byte ${hex(this.#cmdOff)}`,
        );
    }
  }
}

/** Options of {@linkcode NtfscloneImageReader}. */
export interface NtfscloneImageReaderOptions {
  /** A name for messages (a path, "stdin"); default none. */
  name?: string;
  /** Bytes per read from the input; default 4 MiB. */
  bufferSize?: number;
  /** Largest cluster batch returned by {@linkcode NtfscloneImageReader.next}; default 4 MiB. */
  batchSize?: number;
}

/**
 * Sequential decoder of an ntfsclone image over a synchronous reader (a file, or a pipe such as
 * stdin: it never seeks). The header is read by the constructor.
 *
 * The `data` of a `"clusters"` command is a view into a reused buffer, valid until the next call
 * of {@linkcode NtfscloneImageReader.next}.
 *
 * @example
 * ```ts
 * import { encodeNtfscloneHeader, NtfscloneImageReader } from "./mod.ts";
 * const header = {
 *   majorVersion: 10, minorVersion: 1, clusterSize: 512, deviceSize: 1536,
 *   nrClusters: 2, inuse: 1, offsetToImageData: 56,
 * };
 * const gap = [0, 1, 0, 0, 0, 0, 0, 0, 0];
 * const image = new Uint8Array([
 *   ...encodeNtfscloneHeader(header), 1, ...new Uint8Array(512).fill(7), ...gap,
 *   1, ...new Uint8Array(512).fill(9),
 * ]);
 * let at = 0;
 * const reader = new NtfscloneImageReader({
 *   readSync(p) {
 *     const n = Math.min(p.length, image.length - at);
 *     p.set(image.subarray(at, at + n));
 *     at += n;
 *     return n || null;
 *   },
 * });
 * const kinds = [];
 * for (let c = reader.next(); c; c = reader.next()) kinds.push(`${c.kind}@${c.lcn}`);
 * console.assert(kinds.join() === "clusters@0,gap@1,clusters@2");
 * ```
 */
export class NtfscloneImageReader {
  readonly #input: ReaderSync;
  readonly #core: NtfscloneDecoderCore;
  #buf: Uint8Array;
  readonly #bufferSize: number;
  #off = 0;
  #end = 0;
  #eof = false;
  /** The decoded, validated header. */
  readonly header: NtfscloneHeader;

  /** Reads and validates the header; throws {@linkcode CorruptImageError} on a bad one. */
  constructor(input: ReaderSync, options: NtfscloneImageReaderOptions = {}) {
    this.#input = input;
    this.#core = new NtfscloneDecoderCore(
      options.name ?? "",
      options.batchSize ?? DEFAULT_BATCH_SIZE,
      false,
    );
    const bufferSize = options.bufferSize ?? 4 << 20;
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(`Invalid bufferSize ${bufferSize}`);
    }
    this.#bufferSize = Math.max(4096, bufferSize);
    this.#buf = new Uint8Array(Math.min(this.#bufferSize, 65536));
    const first = this.#pull();
    if (!first || first.kind !== "header") throw new Error("unreachable: no header event");
    this.header = first.header;
    // Grow the read buffer to its full size, unless the whole image is known to be smaller.
    const h = first.header;
    const most = (h.nrClusters + 1) * (h.clusterSize + 10) + 65536;
    const size = Math.min(this.#bufferSize, most);
    if (size > this.#buf.length) {
      const b = new Uint8Array(size);
      b.set(this.#buf.subarray(this.#off, this.#end));
      this.#end -= this.#off;
      this.#off = 0;
      this.#buf = b;
    }
  }

  #pull(): NtfscloneRecord | null {
    const core = this.#core;
    for (;;) {
      const e = core.take();
      if (e) return e;
      if (core.done) return null;
      if (this.#off < this.#end) {
        this.#off = core.step(this.#buf, this.#off, this.#end);
        continue;
      }
      if (this.#eof) return core.finish();
      const n = this.#input.readSync(this.#buf);
      if (n === null || n === 0) this.#eof = true;
      else {
        this.#off = 0;
        this.#end = n;
      }
    }
  }

  /** The next command, or `null` at the end of the command stream. */
  next(): NtfscloneCommand | null {
    return this.#pull() as NtfscloneCommand | null;
  }

  /** The cluster position of the next command. */
  get position(): number {
    return this.#core.position;
  }
  /** Image bytes decoded so far (header included; read-ahead not counted). */
  get offset(): number {
    return this.#core.offset;
  }
  /** True when the image ended at cluster `nrClusters` without the backup-boot record (10.0). */
  get missingBackupBoot(): boolean {
    return this.#core.missingBackupBoot;
  }
  /** NEXT records decoded so far. */
  get clusterCount(): number {
    return this.#core.clusterCount;
  }
  /** GAP records decoded so far. */
  get gapCount(): number {
    return this.#core.gapCount;
  }
}

/** Options of {@linkcode NtfscloneDecoderStream}. */
export interface NtfscloneDecoderStreamOptions {
  /** A name for messages; default none. */
  name?: string;
  /** Largest cluster batch emitted; default 4 MiB. */
  batchSize?: number;
}

/**
 * Web-stream decoder: bytes of an ntfsclone image in, records out — first
 * `{ kind: "header" }`, then `"clusters"` and `"gap"` commands. Each emitted `data` is its own
 * copy. The records do not depend on how the input is chunked. Errors the stream with
 * {@linkcode CorruptImageError} on a corrupt or truncated image.
 *
 * @example
 * ```ts
 * import { encodeNtfscloneHeader, NtfscloneDecoderStream } from "./mod.ts";
 * const header = {
 *   majorVersion: 10, minorVersion: 1, clusterSize: 512, deviceSize: 1024,
 *   nrClusters: 1, inuse: 1, offsetToImageData: 56,
 * };
 * const image = new Uint8Array([
 *   ...encodeNtfscloneHeader(header), 1, ...new Uint8Array(512), 1, ...new Uint8Array(512),
 * ]);
 * const records = await Array.fromAsync(
 *   ReadableStream.from([image]).pipeThrough(new NtfscloneDecoderStream()),
 * );
 * console.assert(records.length === 2 && records[1]!.kind === "clusters");
 * ```
 */
export class NtfscloneDecoderStream extends TransformStream<Uint8Array, NtfscloneRecord> {
  /** Creates the decoder. */
  constructor(options: NtfscloneDecoderStreamOptions = {}) {
    const core = new NtfscloneDecoderCore(
      options.name ?? "",
      options.batchSize ?? DEFAULT_BATCH_SIZE,
      true,
    );
    super({
      transform(chunk, controller) {
        let off = 0;
        for (;;) {
          off = core.step(chunk, off, chunk.length);
          const e = core.take();
          if (e) controller.enqueue(e);
          else if (off >= chunk.length) break;
        }
      },
      flush(controller) {
        for (let e = core.finish(); e; e = core.finish()) controller.enqueue(e);
      },
    });
  }
}
