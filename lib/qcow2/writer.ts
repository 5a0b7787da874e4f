/**
 * The QCOW2 writer: {@linkcode writeQcow2} turns a list of guest byte extents of a source into a
 * QCOW2 image that `qemu-img check` finds clean and that e2image 1.47 can read back (`-r`).
 *
 * Layout, all computed from the extent list before the first data byte:
 *
 * ```
 * cluster 0        header (v2: 72 bytes; v3: 112 bytes), rest zero
 * 1 .. L1c         L1 table
 * ..               refcount table (RTc clusters)
 * ..               refcount block slots (RBc, an upper bound)
 * ..               L2 table slots, one per L1 index the extents touch (an upper bound)
 * dataStart ..     data clusters, packed in ascending guest order, all-zero clusters left out
 * ```
 *
 * The slots are sized for the worst case (every selected cluster holds data), so the layout is
 * a pure function of the extents; which clusters turn out all-zero only decides which slots are
 * used and where the packed data go. Unused slots are never referenced and have refcount 0
 * (holes in a file, zeros in a stream), which `qemu-img check` accepts. Every used cluster has
 * refcount 1 and every L1/L2 entry the COPIED flag, so the image is clean.
 *
 * A seekable sink gets one pass: data first, then the metadata, then the header last (an
 * interrupted write leaves no valid header). A stream sink (a pipe) gets the same bytes in
 * file order: a read-only pre-pass finds the all-zero clusters, then header, tables and data are
 * written strictly sequentially.
 *
 * @module
 */
import { ReadError } from "../errors.ts";
import type { BlockExtent, ByteExtent } from "../_internal/extents.ts";
import { normalizeExtents, validateExtents } from "../_internal/extents.ts";
import { isPowerOfTwo, isZero } from "../_internal/bytes.ts";
import type { Sink, Source } from "../io/types.ts";
import { encodeQcow2Header, QCOW2_MAX_L1_ENTRIES, type Qcow2Header } from "./header.ts";

/** Options of {@linkcode writeQcow2}. */
export interface WriteQcow2Options {
  /** The virtual disk size in bytes (e2image: blocks_count × block size). */
  virtualSize: number;
  /** Cluster size in bytes: a power of two from 512 to 2 MiB (e2image: the fs block size). */
  clusterSize: number;
  /**
   * QCOW2 version: 2 (default; what e2image writes and the only one `e2image -r` reads) or 3
   * (qemu's "compat=1.1"; same layout, 112-byte header, 16-bit refcounts).
   */
  version?: 2 | 3;
  /** Leave all-zero clusters out of the image (they read as zeros); default true. */
  skipZeroClusters?: boolean;
  /**
   * Changes a cluster in place before the zero test and before it is written (e2image `-s`).
   * Called exactly once per selected, readable cluster, in ascending guest order, with the
   * cluster's guest byte offset and a cluster-sized buffer. For a stream sink with
   * `skipZeroClusters`, the zero test of the pre-pass sees the untransformed data, so the
   * transform must keep all-zero clusters all-zero (e2image's scrambler does); a transform that
   * turns an all-zero cluster into data makes the write fail with a `TypeError`.
   */
  transform?: (offset: number, block: Uint8Array) => void;
  /**
   * Called for each cluster that cannot be read (guest offset and length). Return `true` to
   * leave the cluster out of the image (it reads as zeros, as e2image -Q does), `false` to
   * rethrow. Without it, read errors throw.
   */
  onReadError?: (error: ReadError, offset: number, length: number) => boolean;
  /** Progress in bytes of selected clusters processed (a stream's pre-pass counts too). */
  onProgress?: (done: number, total: number) => void;
  /** Bytes per read/write batch (rounded down to whole clusters, at least one); default 4 MiB. */
  bufferSize?: number;
}

/** What {@linkcode writeQcow2} wrote. */
export interface Qcow2WriteResult {
  /** Length of the QCOW2 image in bytes (a whole number of clusters). */
  imageSize: number;
  /** Data clusters stored. */
  dataClusters: number;
  /** Selected clusters left out because they were all zero. */
  zeroClusters: number;
  /** Selected clusters left out because they could not be read. */
  unreadableClusters: number;
  /** L2 tables stored. */
  l2Tables: number;
  /** Bytes read from the source. */
  bytesRead: number;
  /** The header written. */
  header: Qcow2Header;
}

/** The layout of an image, computed from the selected clusters alone. */
export interface Qcow2Layout {
  /** Cluster size in bytes. */
  clusterSize: number;
  /** L1 entries. */
  l1Size: number;
  /** Clusters of the L1 table. */
  l1Clusters: number;
  /** First cluster of the refcount table. */
  refcountTableCluster: number;
  /** Clusters of the refcount table. */
  refcountTableClusters: number;
  /** First refcount block slot. */
  refcountBlockCluster: number;
  /** Refcount block slots reserved. */
  refcountBlockSlots: number;
  /** First L2 slot. */
  l2Cluster: number;
  /** L1 indexes that get an L2 slot, as runs (ascending); slot k serves the k-th index. */
  l1Runs: BlockExtent[];
  /** L2 slots reserved (the number of indexes in `l1Runs`). */
  l2Slots: number;
  /** First data cluster. */
  dataCluster: number;
  /** Refcount entries per refcount block (16-bit refcounts). */
  refcountsPerBlock: number;
}

/**
 * Computes the layout for the selected guest clusters (runs in cluster units), reserving slots
 * for the worst case where every selected cluster holds data.
 *
 * @example
 * ```ts
 * import { planQcow2Layout } from "./writer.ts";
 * const l = planQcow2Layout([{ start: 0, count: 16 }], 65536, 1 << 20);
 * console.assert(l.l1Size === 1 && l.l2Slots === 1 && l.dataCluster === 5);
 * ```
 */
export function planQcow2Layout(
  clusters: readonly BlockExtent[],
  clusterSize: number,
  virtualSize: number,
): Qcow2Layout {
  const cs = clusterSize;
  const l2Entries = cs / 8;
  const l2Span = l2Entries * cs;
  const l1Size = Math.ceil(virtualSize / l2Span);
  const l1Clusters = Math.ceil(l1Size * 8 / cs);
  const l1Runs: BlockExtent[] = [];
  let n = 0;
  for (const r of clusters) {
    n += r.count;
    const a = Math.floor(r.start / l2Entries);
    const b = Math.floor((r.start + r.count - 1) / l2Entries);
    const last = l1Runs[l1Runs.length - 1];
    if (last && a <= last.start + last.count) {
      last.count = Math.max(last.count, b + 1 - last.start);
    } else l1Runs.push({ start: a, count: b + 1 - a });
  }
  let l2Slots = 0;
  for (const r of l1Runs) l2Slots += r.count;
  const perBlock = cs / 2; // 16-bit refcounts
  let rb = 0, rt = 1;
  for (let i = 0; i < 64; i++) {
    const total = 1 + l1Clusters + rt + rb + l2Slots + n;
    const rb2 = Math.ceil(total / perBlock);
    const rt2 = Math.max(1, Math.ceil(rb2 * 8 / cs));
    if (rb2 === rb && rt2 === rt) break;
    rb = rb2;
    rt = rt2;
  }
  const refcountTableCluster = 1 + l1Clusters;
  const refcountBlockCluster = refcountTableCluster + rt;
  const l2Cluster = refcountBlockCluster + rb;
  return {
    clusterSize: cs,
    l1Size,
    l1Clusters,
    refcountTableCluster,
    refcountTableClusters: rt,
    refcountBlockCluster,
    refcountBlockSlots: rb,
    l2Cluster,
    l1Runs,
    l2Slots,
    dataCluster: l2Cluster + l2Slots,
    refcountsPerBlock: perBlock,
  };
}

/** Appends ascending cluster numbers as merged runs. */
class RunBuilder {
  readonly runs: BlockExtent[] = [];
  count = 0;
  add(c: number, n = 1): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last.start + last.count === c) last.count += n;
    else this.runs.push({ start: c, count: n });
    this.count += n;
  }
}

/** Walks ascending cluster numbers against a sorted run list. */
class RunCursor {
  #runs: readonly BlockExtent[];
  #i = 0;
  constructor(runs: readonly BlockExtent[]) {
    this.#runs = runs;
  }
  has(c: number): boolean {
    while (this.#i < this.#runs.length) {
      const r = this.#runs[this.#i]!;
      if (c < r.start) return false;
      if (c < r.start + r.count) return true;
      this.#i++;
    }
    return false;
  }
}

/** Buffered writer of the file in ascending order; holes are skipped or zero-filled. */
class Emitter {
  #sink: Sink;
  #buf: Uint8Array;
  #start = 0;
  #len = 0;
  #stream: boolean;
  constructor(sink: Sink, bufferSize: number) {
    this.#sink = sink;
    this.#stream = sink.kind === "stream";
    this.#buf = new Uint8Array(bufferSize);
  }
  /** Writes `data` at `offset` (≥ everything emitted before). */
  put(offset: number, data: Uint8Array): void {
    if (offset !== this.#start + this.#len) {
      if (this.#stream) this.zeros(offset - (this.#start + this.#len));
      else {
        this.flush();
        this.#start = offset;
      }
    }
    if (this.#len + data.length > this.#buf.length) this.flush();
    if (data.length >= this.#buf.length) {
      this.#sink.writeAt(this.#start, data);
      this.#start += data.length;
      return;
    }
    this.#buf.set(data, this.#len);
    this.#len += data.length;
  }
  zeros(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.#buf.length - this.#len);
      this.#buf.fill(0, this.#len, this.#len + k);
      this.#len += k;
      n -= k;
      if (this.#len === this.#buf.length) this.flush();
    }
  }
  flush(): void {
    if (this.#len > 0) this.#sink.writeAt(this.#start, this.#buf.subarray(0, this.#len));
    this.#start += this.#len;
    this.#len = 0;
  }
  get position(): number {
    return this.#start + this.#len;
  }
}

function be64(b: Uint8Array, off: number, v: number): void {
  const hi = Math.floor(v / 0x100000000), lo = v % 0x100000000;
  b[off] = hi >>> 24;
  b[off + 1] = (hi >>> 16) & 0xff;
  b[off + 2] = (hi >>> 8) & 0xff;
  b[off + 3] = hi & 0xff;
  b[off + 4] = lo >>> 24;
  b[off + 5] = (lo >>> 16) & 0xff;
  b[off + 6] = (lo >>> 8) & 0xff;
  b[off + 7] = lo & 0xff;
}

const COPIED_HI = 0x80; // bit 63, in the first byte of a big-endian entry

/**
 * Writes a QCOW2 image of the guest byte `extents` of `source` (sorted, non-overlapping, inside
 * `virtualSize`) to `sink`. Bytes of a selected cluster outside the extents read back as
 * zeros; clusters outside every extent are unallocated. The result is deterministic: the same
 * inputs give the same bytes, whether `sink` is a file, a device or a stream.
 *
 * Reads go in batches of `bufferSize` bytes over runs of selected clusters; data clusters are
 * written in one call per batch, tables in one call per buffer.
 *
 * @throws {RangeError} bad options or extents
 * @throws {ReadError} a read failed and `onReadError` did not accept it
 * @throws {TypeError} a stream sink with a transform that turned a zero cluster into data
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "../io/memory.ts";
 * import { writeQcow2 } from "./writer.ts";
 * const raw = new Uint8Array(65536);
 * raw.fill(1, 0, 1024);
 * const out = new MemorySink();
 * const r = writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: 65536 }], {
 *   virtualSize: 65536,
 *   clusterSize: 1024,
 * });
 * console.assert(r.dataClusters === 1 && r.zeroClusters === 63 && out.size === r.imageSize);
 * ```
 */
export function writeQcow2(
  source: Source,
  sink: Sink,
  extents: readonly ByteExtent[],
  options: WriteQcow2Options,
): Qcow2WriteResult {
  const cs = options.clusterSize;
  const V = options.virtualSize;
  if (!isPowerOfTwo(cs) || cs < 512 || cs > 2 * 1024 * 1024) {
    throw new RangeError(`clusterSize must be a power of two from 512 to 2097152, found ${cs}`);
  }
  if (!Number.isSafeInteger(V) || V < 0) {
    throw new RangeError(`virtualSize must be a non-negative integer, found ${V}`);
  }
  const version = options.version ?? 2;
  if (version !== 2 && version !== 3) throw new RangeError(`version must be 2 or 3`);
  const l2Entries = cs / 8;
  if (Math.ceil(V / (l2Entries * cs)) > QCOW2_MAX_L1_ENTRIES) {
    throw new RangeError(
      `virtualSize ${V} needs more than ${QCOW2_MAX_L1_ENTRIES} L1 entries with ${cs}-byte clusters`,
    );
  }
  validateExtents(extents, V);
  const ext = normalizeExtents(extents);
  const skipZero = options.skipZeroClusters ?? true;
  const stream = sink.kind === "stream";
  const cb = Math.log2(cs);
  const batch = Math.max(
    cs,
    Math.floor((options.bufferSize ?? 4 * 1024 * 1024) / cs) * cs,
  );
  const bc = batch / cs;

  // Selected clusters, as runs.
  const sel = new RunBuilder();
  for (const e of ext) {
    let a = Math.floor(e.offset / cs);
    const b = Math.ceil((e.offset + e.length) / cs);
    const last = sel.runs[sel.runs.length - 1];
    if (last && a < last.start + last.count) a = last.start + last.count;
    if (b > a) sel.add(a, b - a);
  }
  const layout = planQcow2Layout(sel.runs, cs, V);
  const dataStart = layout.dataCluster * cs;
  const passes = stream && skipZero ? 2 : 1;
  const totalBytes = sel.count * cs * passes;
  let doneBytes = 0;
  let bytesRead = 0;

  const buf = new Uint8Array(batch);
  let extIdx = 0;
  /** Reads the extent bytes of `[a, b)` into `buf` (which starts at cluster `c0`). */
  const readSpan = (c0: number, a: number, b: number) => {
    const base = c0 * cs;
    for (let i = extIdx; i < ext.length && ext[i]!.offset < b; i++) {
      const e = ext[i]!;
      const x = Math.max(a, e.offset), y = Math.min(b, e.offset + e.length, source.size);
      if (x >= y) continue;
      bytesRead += source.readAt(x, buf.subarray(x - base, y - base));
    }
  };
  /**
   * Reads clusters `[c0, c0 + k)` (only those in `want`, when given) into `buf`, zeros outside
   * the extents; returns the clusters that could not be read and were accepted by onReadError.
   */
  const readBatch = (c0: number, k: number, want: RunCursor | undefined): number[] => {
    buf.fill(0, 0, k * cs);
    while (extIdx < ext.length && ext[extIdx]!.offset + ext[extIdx]!.length <= c0 * cs) extIdx++;
    const subs: Array<[number, number]> = [];
    if (!want) subs.push([c0, c0 + k]);
    else {
      for (let c = c0; c < c0 + k; c++) {
        if (!want.has(c)) continue;
        const last = subs[subs.length - 1];
        if (last && last[1] === c) last[1]++;
        else subs.push([c, c + 1]);
      }
    }
    const failed: number[] = [];
    for (const [s, e] of subs) {
      try {
        readSpan(c0, s * cs, e * cs);
      } catch (err) {
        if (!(err instanceof ReadError) || !options.onReadError) throw err;
        // Isolate the unreadable clusters of this run.
        buf.fill(0, (s - c0) * cs, (e - c0) * cs);
        for (let c = s; c < e; c++) {
          try {
            readSpan(c0, c * cs, (c + 1) * cs);
          } catch (err2) {
            if (!(err2 instanceof ReadError) || !options.onReadError(err2, c * cs, cs)) throw err2;
            buf.fill(0, (c - c0) * cs, (c + 1 - c0) * cs);
            failed.push(c);
          }
        }
      }
    }
    return failed;
  };
  const progress = (n: number) => {
    doneBytes += n;
    options.onProgress?.(doneBytes, totalBytes);
  };

  // Pre-pass for streams: which clusters hold data.
  let planned: RunCursor | undefined;
  let plannedRead: RunCursor | undefined;
  let plannedAny: RunCursor | undefined;
  let plannedUnreadable: RunCursor | undefined;
  let plannedRuns: BlockExtent[] | undefined;
  let unreadable = 0;
  if (stream && skipZero) {
    const data = new RunBuilder(), bad = new RunBuilder();
    for (const r of sel.runs) {
      for (let c0 = r.start; c0 < r.start + r.count; c0 += bc) {
        const k = Math.min(bc, r.start + r.count - c0);
        const failed = readBatch(c0, k, undefined);
        let fi = 0;
        for (let i = 0; i < k; i++) {
          const c = c0 + i;
          if (failed[fi] === c) {
            fi++;
            bad.add(c);
            continue;
          }
          if (!isZero(buf.subarray(i * cs, (i + 1) * cs))) data.add(c);
        }
        progress(k * cs);
      }
    }
    extIdx = 0;
    plannedRuns = data.runs;
    planned = new RunCursor(data.runs);
    plannedRead = new RunCursor(data.runs);
    plannedAny = new RunCursor(data.runs);
    plannedUnreadable = new RunCursor(bad.runs);
    unreadable = bad.count;
  } else if (stream) {
    plannedRuns = sel.runs;
  }

  const header = makeHeader(version, cb, V, layout);
  const out = new Emitter(sink, batch);
  if (plannedRuns) writeMetadata(out, layout, plannedRuns, header, true);

  // Data pass.
  const dataRuns = new RunBuilder();
  let zeroClusters = 0;
  for (const r of sel.runs) {
    for (let c0 = r.start; c0 < r.start + r.count; c0 += bc) {
      const k = Math.min(bc, r.start + r.count - c0);
      let failed: number[] = [];
      const keep: number[] = [];
      if (planned && plannedUnreadable && plannedRead && plannedAny) {
        // Stream with a plan: read only what the plan stores, transform every readable cluster.
        let any = false;
        for (let c = c0; c < c0 + k; c++) if (plannedAny.has(c)) any = true;
        if (any) failed = readBatch(c0, k, plannedRead);
        else buf.fill(0, 0, k * cs);
        for (let i = 0; i < k; i++) {
          const c = c0 + i;
          if (plannedUnreadable.has(c)) continue;
          const blk = buf.subarray(i * cs, (i + 1) * cs);
          const isData = planned.has(c);
          if (isData && failed.includes(c)) {
            keep.push(i); // became unreadable since the pre-pass: stored as zeros
            continue;
          }
          options.transform?.(c * cs, blk);
          if (isData) keep.push(i);
          else if (!isZero(blk)) {
            throw new TypeError(
              `The transform turned the all-zero cluster at byte 0x${
                (c * cs).toString(16)
              } into data; streaming QCOW2 output needs a zero-preserving transform`,
            );
          } else zeroClusters++;
        }
      } else {
        failed = readBatch(c0, k, undefined);
        let fi = 0;
        for (let i = 0; i < k; i++) {
          const c = c0 + i;
          if (failed[fi] === c) {
            fi++;
            unreadable++;
            // A stream already announced every selected cluster: store it as zeros.
            if (plannedRuns) keep.push(i);
            continue;
          }
          const blk = buf.subarray(i * cs, (i + 1) * cs);
          options.transform?.(c * cs, blk);
          if (skipZero && isZero(blk)) zeroClusters++;
          else keep.push(i);
        }
      }
      // Pack the kept clusters and write them in one call.
      if (keep.length > 0) {
        for (let j = 0; j < keep.length; j++) {
          const i = keep[j]!;
          if (i !== j) buf.copyWithin(j * cs, i * cs, (i + 1) * cs);
          dataRuns.add(c0 + i);
        }
        const at = dataStart + (dataRuns.count - keep.length) * cs;
        out.put(at, buf.subarray(0, keep.length * cs));
      }
      progress(k * cs);
    }
  }
  out.flush();
  if (!plannedRuns) {
    // Seekable sink: tables after the data, header last.
    const meta = new Emitter(sink, batch);
    writeMetadata(meta, layout, dataRuns.runs, header, false);
    meta.flush();
    sink.writeAt(0, padCluster(encodeQcow2Header(header), cs));
  }
  const imageSize = dataStart + dataRuns.count * cs;
  if (stream) {
    if (out.position < imageSize) {
      out.zeros(imageSize - out.position);
      out.flush();
    }
  } else if (sink.kind === "file") {
    sink.truncate?.(imageSize);
  }
  return {
    imageSize,
    dataClusters: dataRuns.count,
    zeroClusters,
    unreadableClusters: unreadable,
    l2Tables: countUsedL1(dataRuns.runs, l2Entries),
    bytesRead,
    header,
  };
}

function padCluster(b: Uint8Array, cs: number): Uint8Array {
  const out = new Uint8Array(cs);
  out.set(b.subarray(0, cs));
  return out;
}

function countUsedL1(data: readonly BlockExtent[], l2Entries: number): number {
  let n = 0, last = -1;
  for (const r of data) {
    const a = Math.floor(r.start / l2Entries), b = Math.floor((r.start + r.count - 1) / l2Entries);
    n += b - Math.max(a, last + 1) + 1;
    last = b;
  }
  return n;
}

function makeHeader(version: 2 | 3, cb: number, size: number, l: Qcow2Layout): Qcow2Header {
  const cs = l.clusterSize;
  return {
    version,
    backingFileOffset: 0,
    backingFileSize: 0,
    clusterBits: cb,
    size,
    cryptMethod: 0,
    l1Size: l.l1Size,
    l1TableOffset: cs,
    refcountTableOffset: l.refcountTableCluster * cs,
    refcountTableClusters: l.refcountTableClusters,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: version === 2 ? 72 : 112,
    compressionType: 0,
    extraHeader: new Uint8Array(version === 2 ? 0 : 7),
    extensions: [],
  };
}

/**
 * Emits cluster 0 (when `withHeader`), the L1 table, the refcount table, the used refcount
 * blocks and the used L2 tables, in file order, for the packed data clusters `data`.
 */
function writeMetadata(
  out: Emitter,
  l: Qcow2Layout,
  data: readonly BlockExtent[],
  header: Qcow2Header,
  withHeader: boolean,
): void {
  const cs = l.clusterSize;
  const l2Entries = cs / 8;
  let dataCount = 0;
  for (const r of data) dataCount += r.count;
  const totalClusters = l.dataCluster + dataCount;

  // Which L1 indexes are used, and their slots.
  const used: Array<[number, number]> = []; // [l1 index, slot cluster]
  {
    let slot = l.l2Cluster;
    let ri = 0, skipped = 0;
    let lastIdx = -1;
    for (const r of data) {
      const a = Math.floor(r.start / l2Entries),
        b = Math.floor((r.start + r.count - 1) / l2Entries);
      for (let i = Math.max(a, lastIdx + 1); i <= b; i++) {
        // Find the slot of index i: its rank among the reserved indexes.
        while (ri < l.l1Runs.length && l.l1Runs[ri]!.start + l.l1Runs[ri]!.count <= i) {
          skipped += l.l1Runs[ri]!.count;
          ri++;
        }
        const run = l.l1Runs[ri]!;
        slot = l.l2Cluster + skipped + (i - run.start);
        used.push([i, slot]);
      }
      lastIdx = Math.max(lastIdx, b);
    }
  }

  if (withHeader) out.put(0, padCluster(encodeQcow2Header(header), cs));

  // L1 table.
  const l1 = new Uint8Array(l.l1Clusters * cs);
  for (const [i, slot] of used) {
    be64(l1, i * 8, slot * cs);
    l1[i * 8] = l1[i * 8]! | COPIED_HI;
  }
  if (l1.length) out.put(cs, l1);

  // Refcount table and blocks. Used clusters: [0, refcountBlockCluster), the referenced
  // refcount blocks, the used L2 slots, the data.
  const per = l.refcountsPerBlock;
  const nBlocks = Math.ceil(totalClusters / per);
  const rt = new Uint8Array(l.refcountTableClusters * cs);
  for (let k = 0; k < nBlocks; k++) be64(rt, k * 8, (l.refcountBlockCluster + k) * cs);
  out.put(l.refcountTableCluster * cs, rt);
  const usedRuns: BlockExtent[] = [{ start: 0, count: l.refcountBlockCluster + nBlocks }];
  for (const [, slot] of used) {
    const last = usedRuns[usedRuns.length - 1]!;
    if (last.start + last.count === slot) last.count++;
    else usedRuns.push({ start: slot, count: 1 });
  }
  if (dataCount > 0) usedRuns.push({ start: l.dataCluster, count: dataCount });
  const block = new Uint8Array(cs);
  let ui = 0;
  for (let k = 0; k < nBlocks; k++) {
    block.fill(0);
    const a = k * per, b = a + per;
    while (ui < usedRuns.length && usedRuns[ui]!.start + usedRuns[ui]!.count <= a) ui++;
    for (let j = ui; j < usedRuns.length && usedRuns[j]!.start < b; j++) {
      const r = usedRuns[j]!;
      const x = Math.max(a, r.start), y = Math.min(b, r.start + r.count);
      for (let c = x; c < y; c++) block[(c - a) * 2 + 1] = 1;
    }
    out.put((l.refcountBlockCluster + k) * cs, block);
  }

  // L2 tables, in slot order (ascending L1 index), mapping the packed data.
  const table = new Uint8Array(cs);
  let di = 0, rank = 0;
  for (const [i, slot] of used) {
    table.fill(0);
    const a = i * l2Entries, b = a + l2Entries;
    while (di < data.length && data[di]!.start + data[di]!.count <= a) {
      rank += data[di]!.count;
      di++;
    }
    let rk = rank; // data clusters before run j
    for (let j = di; j < data.length && data[j]!.start < b; j++) {
      const r = data[j]!;
      const x = Math.max(a, r.start), y = Math.min(b, r.start + r.count);
      const rank0 = rk + (x - r.start);
      rk += r.count;
      for (let c = x; c < y; c++) {
        const p = (c - a) * 8;
        be64(table, p, (l.dataCluster + rank0 + (c - x)) * cs);
        table[p] = table[p]! | COPIED_HI;
      }
    }
    out.put(slot * cs, table);
  }
  // Pad to the end of the metadata area (streams: zeros for unused slots).
  if (withHeader && out.position < l.dataCluster * cs && dataCount > 0) {
    out.zeros(l.dataCluster * cs - out.position);
  }
}
