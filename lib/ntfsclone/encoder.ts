/**
 * Encoding ntfsclone special images: {@linkcode NtfscloneImageWriter} (synchronous, batching
 * commands into large sink writes), {@linkcode saveImage} (the plain `ntfsclone --save-image`
 * command sequence from a used-cluster list) and the web {@linkcode NtfscloneEncoderStream}.
 *
 * @module
 */
import { ReadError } from "../errors.ts";
import type { BlockExtent } from "../_internal/extents.ts";
import type { Sink, Source } from "../io/types.ts";
import { encodeNtfscloneHeader, type NtfscloneHeader } from "./header.ts";
import type { NtfscloneRecord } from "./decoder.ts";

/** Default bytes buffered before a sink write: 4 MiB. */
export const DEFAULT_WRITE_BUFFER_SIZE: number = 4 << 20;

/**
 * The command encoder shared by the writer and the stream; `emit` receives full buffers (it
 * must use or copy them before returning unless `fresh` buffers are requested).
 * @internal
 */
export class NtfscloneEncoderCore {
  readonly header: NtfscloneHeader;
  readonly #emit: (chunk: Uint8Array) => void;
  readonly #fresh: boolean;
  readonly #cs: number;
  readonly #nr: number;
  readonly #dev: number;
  #buf: Uint8Array;
  #len = 0;
  #written = 0;
  #pos = 0;
  #finished = false;
  #clusters = 0;
  #gaps = 0;

  constructor(
    header: NtfscloneHeader,
    emit: (chunk: Uint8Array) => void,
    bufferSize: number,
    fresh: boolean,
  ) {
    const head = encodeNtfscloneHeader(header);
    if (header.majorVersion < 10) throw new RangeError("Cannot write a legacy (pre-10) image");
    this.header = header;
    this.#emit = emit;
    this.#fresh = fresh;
    this.#cs = header.clusterSize;
    this.#nr = header.nrClusters;
    this.#dev = header.deviceSize;
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(`Invalid bufferSize ${bufferSize}`);
    }
    this.#buf = new Uint8Array(Math.max(bufferSize, head.length, 64));
    this.#buf.set(head);
    this.#len = head.length;
  }

  get position(): number {
    return this.#pos;
  }
  get bytes(): number {
    return this.#written + this.#len;
  }
  get clusterCount(): number {
    return this.#clusters;
  }
  get gapCount(): number {
    return this.#gaps;
  }

  #flush(): void {
    if (this.#len === 0) return;
    const out = this.#buf.subarray(0, this.#len);
    this.#written += this.#len;
    this.#len = 0;
    this.#emit(out);
    if (this.#fresh) this.#buf = new Uint8Array(this.#buf.length);
  }

  #put(data: Uint8Array): void {
    let p = 0;
    while (p < data.length) {
      if (this.#len === this.#buf.length) this.#flush();
      const n = Math.min(this.#buf.length - this.#len, data.length - p);
      this.#buf.set(data.subarray(p, p + n), this.#len);
      this.#len += n;
      p += n;
    }
  }

  #byte(b: number): void {
    if (this.#len === this.#buf.length) this.#flush();
    this.#buf[this.#len++] = b;
  }

  #live(): void {
    if (this.#finished) throw new TypeError("The ntfsclone image is already finished");
  }

  clusters(data: Uint8Array): void {
    this.#live();
    const cs = this.#cs;
    let p = 0;
    do {
      const pos = this.#pos;
      if (pos > this.#nr) {
        throw new RangeError(
          `Cluster ${pos} is past the backup-boot cluster ${this.#nr} of the image`,
        );
      }
      const size = (pos + 1) * cs >= this.#dev ? this.#dev - pos * cs : cs;
      const left = data.length - p;
      let take: number;
      if (left >= cs) take = cs;
      else if (left === size) take = size;
      else {
        throw new RangeError(
          `Cluster ${pos} needs ${size === cs ? cs : `${size} or ${cs}`} bytes, got ${left}`,
        );
      }
      this.#byte(1); // CMD_NEXT
      this.#put(data.subarray(p, p + size));
      p += take;
      this.#pos++;
      this.#clusters++;
    } while (p < data.length);
  }

  /**
   * Prepares `n` full-size NEXT records in place (the fast path of {@linkcode saveImage}):
   * returns the `n * clusterSize` bytes where the caller puts the payloads, contiguously, before
   * calling {@linkcode NtfscloneEncoderCore.spreadClusters} with the same `n`. Returns undefined
   * (and changes nothing) when any of the `n` clusters is short (the backup-boot cluster at the
   * device end), passes `nrClusters`, or the buffer cannot hold the `n` records.
   */
  reserveClusters(n: number): Uint8Array | undefined {
    this.#live();
    const cs = this.#cs, pos = this.#pos;
    if (n < 1 || pos + n - 1 > this.#nr || (pos + n) * cs >= this.#dev) return undefined;
    const need = n * (cs + 1);
    if (need > this.#buf.length) return undefined;
    if (this.#buf.length - this.#len < need) this.#flush();
    // Payloads go to the tail of the records' space, so that spreading them forward (each
    // moved down by the command bytes before it) never overwrites one not yet moved.
    const at = this.#len + n;
    return this.#buf.subarray(at, at + n * cs);
  }

  /** Turns the `n` payloads placed by {@linkcode NtfscloneEncoderCore.reserveClusters} into records. */
  spreadClusters(n: number): void {
    const cs = this.#cs, b = this.#buf, len = this.#len;
    const src = len + n;
    for (let i = 0; i < n; i++) {
      const to = len + i * (cs + 1);
      b.copyWithin(to + 1, src + i * cs, src + (i + 1) * cs);
      b[to] = 1; // CMD_NEXT
    }
    this.#len = len + n * (cs + 1);
    this.#pos += n;
    this.#clusters += n;
  }

  gap(count: number): void {
    this.#live();
    if (!Number.isSafeInteger(count)) throw new RangeError(`Invalid gap count ${count}`);
    if (count === 0) return;
    const target = this.#pos + count;
    if (target < 0 || target > this.#nr) {
      throw new RangeError(
        `Gap of ${count} clusters from cluster ${this.#pos} leaves the volume (0 to ${this.#nr})`,
      );
    }
    if (this.#buf.length - this.#len < 9) this.#flush();
    const b = this.#buf;
    let o = this.#len;
    b[o++] = 0; // CMD_GAP
    // Two's-complement little-endian 64-bit count.
    const lo = count >= 0
      ? count % 0x100000000
      : (0x100000000 + (count % 0x100000000)) % 0x100000000;
    const hi = Math.floor(count / 0x100000000) >>> 0;
    b[o++] = lo & 0xff;
    b[o++] = (lo >>> 8) & 0xff;
    b[o++] = (lo >>> 16) & 0xff;
    b[o++] = (lo >>> 24) & 0xff;
    b[o++] = hi & 0xff;
    b[o++] = (hi >>> 8) & 0xff;
    b[o++] = (hi >>> 16) & 0xff;
    b[o++] = (hi >>> 24) & 0xff;
    this.#len = o;
    this.#pos = target;
    this.#gaps++;
  }

  finish(): number {
    if (!this.#finished) {
      this.#flush();
      this.#finished = true;
    }
    return this.#written;
  }
}

/** Options of {@linkcode NtfscloneImageWriter}. */
export interface NtfscloneImageWriterOptions {
  /** Bytes buffered per sink write; default 4 MiB. */
  bufferSize?: number;
}

/**
 * Writes an ntfsclone image sequentially to a sink (a file from byte 0, or a stream): the
 * header at construction, then the commands, batched into large writes.
 *
 * Clusters are given in image order: {@linkcode NtfscloneImageWriter.clusters} stores the
 * clusters at the current position (each `clusterSize` bytes; the cluster that reaches
 * `deviceSize` may be given whole or as its shorter payload, and only the payload is stored),
 * {@linkcode NtfscloneImageWriter.gap} moves the position. The format has no trailer:
 * {@linkcode NtfscloneImageWriter.finish} flushes.
 *
 * @example
 * ```ts
 * import { MemorySink } from "../io/mod.ts";
 * import { createNtfscloneHeader, NtfscloneImageWriter } from "./mod.ts";
 * const sink = new MemorySink({ kind: "stream" });
 * const header = createNtfscloneHeader({ clusterSize: 512, deviceSize: 2048, nrClusters: 3, inuse: 2 });
 * const w = new NtfscloneImageWriter(sink, header);
 * w.clusters(new Uint8Array(512));
 * w.gap(1);
 * w.clusters(new Uint8Array(1024));
 * w.finish();
 * console.assert(sink.size === 56 + 513 + 9 + 2 * 513);
 * ```
 */
export class NtfscloneImageWriter {
  readonly #core: NtfscloneEncoderCore;
  readonly #sink: Sink;

  /** Writes the header (buffered) and prepares the command stream. */
  constructor(sink: Sink, header: NtfscloneHeader, options: NtfscloneImageWriterOptions = {}) {
    this.#sink = sink;
    const start = sink.kind === "stream" ? sink.size : 0;
    let at = start;
    this.#core = new NtfscloneEncoderCore(
      header,
      (chunk) => {
        sink.writeAt(at, chunk);
        at += chunk.length;
      },
      options.bufferSize ?? DEFAULT_WRITE_BUFFER_SIZE,
      false,
    );
  }

  /** The header being written. */
  get header(): NtfscloneHeader {
    return this.#core.header;
  }
  /** The cluster position of the next command. */
  get position(): number {
    return this.#core.position;
  }
  /** Image bytes produced so far (buffered ones included). */
  get bytesWritten(): number {
    return this.#core.bytes;
  }
  /** NEXT records written. */
  get clusterCount(): number {
    return this.#core.clusterCount;
  }
  /** GAP records written. */
  get gapCount(): number {
    return this.#core.gapCount;
  }
  /** The sink written to. */
  get sink(): Sink {
    return this.#sink;
  }

  /**
   * Stores one or more clusters at the current position. `RangeError` when `data` is not whole
   * clusters (see the class documentation) or passes the backup-boot cluster.
   */
  clusters(data: Uint8Array): void {
    this.#core.clusters(data);
  }

  /**
   * Skips `count` clusters (negative counts move back, as metadata images do; 0 writes nothing).
   * `RangeError` when the position would leave `[0, nrClusters]`.
   */
  gap(count: number): void {
    this.#core.gap(count);
  }

  /** Flushes the buffered commands; returns the image size in bytes. Idempotent. */
  finish(): number {
    return this.#core.finish();
  }
}

/** Options of {@linkcode saveImage}. */
export interface SaveImageOptions {
  /** Bytes per read and per sink write; default 4 MiB. */
  bufferSize?: number;
  /**
   * Changes a cluster in place before it is stored (e.g. a new serial number in the boot
   * sectors). `offset` is the cluster's byte offset on the device; `cluster` is its payload.
   */
  transform?: (offset: number, cluster: Uint8Array) => void;
  /** Progress in clusters: stored so far, of all used clusters. Called per batch. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Called for a cluster that cannot be read (an I/O error or the source ending early), with
   * `cluster` zero-filled: fill it (e.g. by rescuing sector by sector) and return `true` to store
   * it, or `false` to rethrow the error. Without it, read errors throw.
   */
  onReadError?: (error: ReadError, offset: number, cluster: Uint8Array) => boolean;
}

/** What {@linkcode saveImage} did. */
export interface SaveResult {
  /** Image size in bytes. */
  imageSize: number;
  /** NEXT records written (used clusters, the backup-boot cluster included). */
  clusters: number;
  /** GAP records written. */
  gaps: number;
  /** Bytes read from the source. */
  bytesRead: number;
  /** Clusters that could not be read and were handed to `onReadError`. */
  clustersUnreadable: number;
}

/**
 * Saves the `used` clusters of `source` as an ntfsclone image, with exactly the commands the
 * real `ntfsclone --save-image` emits: a GAP for each free run between used runs, a NEXT per
 * used cluster, nothing after the last one. `used` must be sorted, non-overlapping and within
 * `[0, nrClusters]`; it normally ends with the backup-boot cluster `nrClusters`, whose payload
 * is cut at `deviceSize`. Sources are read in large batches.
 *
 * (If cluster 0 were free, ntfsclone would write a first gap one cluster too short; this
 * writes the correct gap. A valid NTFS always uses cluster 0.)
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "../io/mod.ts";
 * import { createNtfscloneHeader, saveImage } from "./mod.ts";
 * const dev = new MemorySource(new Uint8Array(4096).fill(3));
 * const header = createNtfscloneHeader({ clusterSize: 1024, deviceSize: 4096, nrClusters: 3, inuse: 1 });
 * const out = new MemorySink({ kind: "stream" });
 * const r = saveImage(dev, out, [{ start: 0, count: 1 }, { start: 3, count: 1 }], header);
 * console.assert(r.clusters === 2 && r.gaps === 1 && r.imageSize === 56 + 2 * 1025 + 9);
 * ```
 */
export function saveImage(
  source: Source,
  sink: Sink,
  used: readonly BlockExtent[],
  header: NtfscloneHeader,
  options: SaveImageOptions = {},
): SaveResult {
  const cs = header.clusterSize;
  const nr = header.nrClusters;
  let total = 0;
  let end = 0;
  for (let i = 0; i < used.length; i++) {
    const e = used[i]!;
    if (
      !Number.isSafeInteger(e.start) || !Number.isSafeInteger(e.count) || e.start < end ||
      e.count <= 0 || e.start + e.count > nr + 1
    ) {
      throw new RangeError(
        `Used extent ${i} (start ${e.start}, count ${e.count}) is unsorted, empty, overlapping or outside clusters 0 to ${nr}`,
      );
    }
    end = e.start + e.count;
    total += e.count;
  }
  const bufferSize = options.bufferSize ?? DEFAULT_WRITE_BUFFER_SIZE;
  const perBatch = Math.max(1, Math.floor(bufferSize / cs));
  // Room for one batch of records (payloads plus their command bytes): a batch is read
  // straight into the image buffer and spread into records in place, with no second copy.
  let at = sink.kind === "stream" ? sink.size : 0;
  const writer = new NtfscloneEncoderCore(
    header,
    (chunk) => {
      sink.writeAt(at, chunk);
      at += chunk.length;
    },
    Math.max(bufferSize, perBatch * (cs + 1)),
    false,
  );
  let buf: Uint8Array | undefined; // for the batches that take the general path
  const res: SaveResult = {
    imageSize: 0,
    clusters: 0,
    gaps: 0,
    bytesRead: 0,
    clustersUnreadable: 0,
  };
  let done = 0;

  const readCluster = (off: number, blk: Uint8Array): void => {
    let err: ReadError | undefined;
    try {
      const n = source.readAt(off, blk);
      res.bytesRead += n;
      if (n < blk.length) {
        err = new ReadError(
          source.name,
          off + n,
          blk.length - n,
          "short read past the end of the source",
        );
      }
    } catch (e) {
      if (!(e instanceof ReadError)) throw e;
      err = e;
    }
    if (!err) return;
    if (!options.onReadError) throw err;
    blk.fill(0);
    res.clustersUnreadable++;
    if (!options.onReadError(err, off, blk)) throw err;
  };

  const readBatch = (off: number, chunk: Uint8Array): void => {
    try {
      const n = source.readAt(off, chunk);
      if (n === chunk.length) {
        res.bytesRead += n;
        return;
      }
      if (!options.onReadError) {
        throw new ReadError(
          source.name,
          off + n,
          chunk.length - n,
          "short read past the end of the source",
        );
      }
    } catch (e) {
      if (!(e instanceof ReadError) || !options.onReadError) throw e;
    }
    for (let p = 0; p < chunk.length; p += cs) {
      readCluster(off + p, chunk.subarray(p, Math.min(p + cs, chunk.length)));
    }
  };

  for (const e of used) {
    if (e.start > writer.position) writer.gap(e.start - writer.position);
    let lcn = e.start;
    const stop = e.start + e.count;
    while (lcn < stop) {
      const n = Math.min(perBatch, stop - lcn);
      const off = lcn * cs;
      const direct = writer.reserveClusters(n);
      if (direct) {
        readBatch(off, direct);
        if (options.transform) {
          for (let p = 0; p < direct.length; p += cs) {
            options.transform(off + p, direct.subarray(p, p + cs));
          }
        }
        writer.spreadClusters(n);
        lcn += n;
        done += n;
        options.onProgress?.(done, total);
        continue;
      }
      const len = Math.min(n * cs, header.deviceSize - off);
      buf ??= new Uint8Array(perBatch * cs);
      const chunk = buf.subarray(0, len);
      if (len > 0) readBatch(off, chunk);
      if (options.transform) {
        for (let p = 0; p < len; p += cs) {
          options.transform(off + p, chunk.subarray(p, Math.min(p + cs, len)));
        }
      }
      writer.clusters(chunk);
      // A cluster with an empty payload (device_size == nr_clusters * cluster_size) has no bytes.
      while (writer.position < lcn + n) writer.clusters(chunk.subarray(0, 0));
      lcn += n;
      done += n;
      options.onProgress?.(done, total);
    }
  }
  res.imageSize = writer.finish();
  res.clusters = writer.clusterCount;
  res.gaps = writer.gapCount;
  return res;
}

/** Input of {@linkcode NtfscloneEncoderStream}: commands (their `lcn`, if present, is checked). */
export type NtfscloneEncoderInput =
  | { kind: "header"; header: NtfscloneHeader }
  | { kind: "clusters"; lcn?: number; data: Uint8Array }
  | { kind: "gap"; lcn?: number; count: number };

/** Options of {@linkcode NtfscloneEncoderStream}. */
export interface NtfscloneEncoderStreamOptions {
  /** Bytes per emitted chunk; default 1 MiB. */
  chunkSize?: number;
}

/**
 * Web-stream encoder: commands in, image bytes out. The header is given to the constructor, or
 * arrives as the first `{ kind: "header" }` record — so the records of
 * {@linkcode NtfscloneDecoderStream} pipe straight back into an identical image.
 *
 * @example
 * ```ts
 * import { createNtfscloneHeader, NtfscloneEncoderStream } from "./mod.ts";
 * const header = createNtfscloneHeader({ clusterSize: 512, deviceSize: 1024, nrClusters: 1, inuse: 1 });
 * const chunks = await Array.fromAsync(
 *   ReadableStream.from([{ kind: "clusters" as const, data: new Uint8Array(1024) }])
 *     .pipeThrough(new NtfscloneEncoderStream(header)),
 * );
 * console.assert(chunks.reduce((n, c) => n + c.length, 0) === 56 + 2 * 513);
 * ```
 */
export class NtfscloneEncoderStream
  extends TransformStream<NtfscloneEncoderInput | NtfscloneRecord, Uint8Array> {
  /** Creates the encoder; without `header`, the first record must be a header record. */
  constructor(header?: NtfscloneHeader, options: NtfscloneEncoderStreamOptions = {}) {
    let core: NtfscloneEncoderCore | undefined;
    const chunkSize = options.chunkSize ?? 1 << 20;
    let out: TransformStreamDefaultController<Uint8Array> | undefined;
    const open = (h: NtfscloneHeader) => {
      core = new NtfscloneEncoderCore(h, (c) => out!.enqueue(c), chunkSize, true);
    };
    if (header) open(header);
    super({
      transform(rec, controller) {
        out = controller;
        if (rec.kind === "header") {
          if (core) throw new TypeError("The header was already given");
          open(rec.header);
          return;
        }
        if (!core) throw new TypeError("The first record must be the header");
        if (rec.lcn !== undefined && rec.lcn !== core.position) {
          throw new RangeError(
            `Command for cluster ${rec.lcn} arrives at cluster ${core.position}`,
          );
        }
        if (rec.kind === "clusters") core.clusters(rec.data);
        else core.gap(rec.count);
      },
      flush(controller) {
        out = controller;
        if (!core) throw new TypeError("No header was given");
        core.finish();
      },
    });
  }
}
