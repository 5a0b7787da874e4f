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
 * A seekable sink gets one pass: data in ascending order, each L2 table written to its slot as
 * soon as the data it maps are placed, then the L1 and refcount tables, and the header last (an
 * interrupted write leaves no valid header). Memory: one batch buffer, one L2 table, the L1. A stream sink (a pipe) gets the same bytes in
 * file order: a read-only pre-pass finds the all-zero clusters, then header, tables and data are
 * written strictly sequentially (memory adds the pre-pass result: 16 bytes per run of data
 * clusters).
 *
 * @module
 */
import { lazyZlib as zlib } from "../_internal/node_builtin.ts";
import { ReadError } from "../errors.ts";
import type { BlockExtent, ByteExtent } from "../_internal/extents.ts";
import { normalizeExtents, validateExtents } from "../_internal/extents.ts";
import { isPowerOfTwo, isZero } from "../_internal/bytes.ts";
import type { Sink, Source } from "../io/types.ts";
import { encodeQcow2Header, QCOW2_MAX_L1_ENTRIES, type Qcow2Header } from "./header.ts";

/** Options of {@linkcode writeQcow2}. */
export interface WriteQcow2Options {
  /**
   * The virtual disk size in bytes, a multiple of 512 (qemu rounds the size down to 512)
   * (e2image: blocks_count × block size).
   */
  virtualSize: number;
  /** Cluster size in bytes: a power of two from 512 to 2 MiB (e2image: the fs block size). */
  clusterSize: number;
  /**
   * QCOW2 version: 2 (default; what e2image writes and the only one `e2image -r` reads) or 3
   * (qemu's "compat=1.1"; same layout, 112-byte header, 16-bit refcounts).
   */
  version?: 2 | 3;
  /**
   * Leave all-zero clusters out of the image (they read as zeros); default true. e2image -Q
   * stores them when its output is a block device: pass `sink.kind !== "device"` to match.
   */
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
  /**
   * Store each data cluster deflate-compressed (raw deflate, 4 KiB window, as `qemu-img convert
   * -c`) when that makes it smaller; compressed streams are packed byte by byte. Default false.
   * `e2image -r` cannot read compressed images. A stream sink compresses every cluster twice
   * (the pre-pass needs the sizes) and refuses a transform.
   */
  compress?: boolean;
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
  /** Data clusters stored compressed (a subset of `dataClusters`). */
  compressedClusters: number;
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

/** Ascending cluster runs in typed arrays (16 bytes per run, whatever the pattern). */
class RunList {
  #start = new Float64Array(16);
  #len = new Float64Array(16);
  /** Number of runs. */
  length = 0;
  /** Number of clusters. */
  count = 0;
  /** Adds `n` clusters at `c` (≥ every cluster added before). */
  add(c: number, n = 1): void {
    const k = this.length;
    if (k > 0 && this.#start[k - 1]! + this.#len[k - 1]! === c) {
      this.#len[k - 1]! += n;
    } else {
      if (k === this.#start.length) {
        const s = new Float64Array(k * 2), l = new Float64Array(k * 2);
        s.set(this.#start);
        l.set(this.#len);
        this.#start = s;
        this.#len = l;
      }
      this.#start[k] = c;
      this.#len[k] = n;
      this.length++;
    }
    this.count += n;
  }
  /** First cluster of run `i`. */
  start(i: number): number {
    return this.#start[i]!;
  }
  /** Clusters in run `i`. */
  size(i: number): number {
    return this.#len[i]!;
  }
}

/** Answers "is cluster c in the list" for ascending c in O(1) amortized. */
class RunCursor {
  #runs: RunList;
  #i = 0;
  constructor(runs: RunList) {
    this.#runs = runs;
  }
  has(c: number): boolean {
    const r = this.#runs;
    while (this.#i < r.length) {
      const a = r.start(this.#i);
      if (c < a) return false;
      if (c < a + r.size(this.#i)) return true;
      this.#i++;
    }
    return false;
  }
}

/** Maps ascending L1 indexes to their reserved L2 slot numbers (0-based). */
class SlotMap {
  #runs: readonly BlockExtent[];
  #ri = 0;
  #skipped = 0;
  constructor(l1Runs: readonly BlockExtent[]) {
    this.#runs = l1Runs;
  }
  slot(i: number): number {
    while (this.#ri < this.#runs.length) {
      const r = this.#runs[this.#ri]!;
      if (i < r.start + r.count) {
        if (i < r.start) break;
        return this.#skipped + (i - r.start);
      }
      this.#skipped += r.count;
      this.#ri++;
    }
    throw new Error(`L1 index ${i} has no reserved L2 slot`);
  }
}

/**
 * Builds the L2 tables from data clusters given in ascending guest order, writing each table
 * to its slot as soon as it is complete; remembers which slots were used.
 */
class L2Builder {
  readonly used: Uint8Array;
  tables = 0;
  #l: Qcow2Layout;
  #out: Emitter;
  #slots: SlotMap;
  #table: Uint8Array;
  #cur = -1;
  #slot = 0;
  constructor(l: Qcow2Layout, out: Emitter) {
    this.#l = l;
    this.#out = out;
    this.#slots = new SlotMap(l.l1Runs);
    this.#table = new Uint8Array(l.clusterSize);
    this.used = new Uint8Array(l.l2Slots);
  }
  /** Returns the byte position of guest cluster `c`'s entry, switching tables as needed. */
  #entry(c: number): number {
    const n = this.#l.clusterSize / 8;
    const i = Math.floor(c / n);
    if (i !== this.#cur) {
      this.finish();
      this.#cur = i;
      this.#slot = this.#slots.slot(i);
    }
    return (c - i * n) * 8;
  }
  /** Maps guest cluster `c` to the data cluster at file offset `host` (refcount 1: COPIED). */
  add(c: number, host: number): void {
    const p = this.#entry(c);
    be64(this.#table, p, host);
    this.#table[p] = this.#table[p]! | COPIED_HI;
  }
  /** Maps guest cluster `c` to the compressed stream of `len` bytes at file offset `at`. */
  addCompressed(c: number, at: number, len: number): void {
    const p = this.#entry(c);
    const x = 62 - (Math.log2(this.#l.clusterSize) - 8); // offset bits
    const nsect = Math.floor((at + len - 1) / 512) - Math.floor(at / 512);
    const entry = (1n << 62n) | (BigInt(nsect) << BigInt(x)) | BigInt(at);
    new DataView(this.#table.buffer).setBigUint64(p, entry, false);
  }
  /** Writes the table being filled, if any. */
  finish(): void {
    if (this.#cur < 0) return;
    this.#out.put((this.#l.l2Cluster + this.#slot) * this.#l.clusterSize, this.#table);
    this.used[this.#slot] = 1;
    this.tables++;
    this.#table.fill(0);
    this.#cur = -1;
  }
}

/**
 * Places data clusters in the data area in ascending guest order: normal clusters on cluster
 * boundaries, compressed streams byte after byte. With compression it counts the references of
 * every host cluster of the data area (several streams may share one); without, every data
 * cluster has exactly one and nothing is stored.
 */
class DataPlacer {
  /** Bytes used after the start of the data area. */
  pos = 0;
  #cs: number;
  #start: number;
  #refs: Uint16Array | undefined;
  constructor(cs: number, start: number, compress: boolean) {
    this.#cs = cs;
    this.#start = start;
    if (compress) this.#refs = new Uint16Array(256);
  }
  /** Host clusters of the data area in use. */
  get clusters(): number {
    return Math.ceil(this.pos / this.#cs);
  }
  /** True when references are counted per host cluster (compression); else each is 1. */
  get counted(): boolean {
    return this.#refs !== undefined;
  }
  /** References of data-area host cluster `k` (< clusters). */
  refcount(k: number): number {
    return this.#refs ? this.#refs[k]! : 1;
  }
  /** Places a normal cluster; returns its file offset. */
  normal(): number {
    const cs = this.#cs;
    const p = Math.ceil(this.pos / cs) * cs;
    this.#inc(p / cs, p / cs);
    this.pos = p + cs;
    return this.#start + p;
  }
  /** Places a compressed stream of `len` bytes; returns its file offset. */
  compressed(len: number): number {
    const cs = this.#cs;
    let p = this.pos;
    // Never let a shared host cluster reach the 16-bit refcount maximum.
    if (p % cs !== 0 && this.#refs![Math.floor(p / cs)]! >= 0xfffe) p = Math.ceil(p / cs) * cs;
    this.#inc(Math.floor(p / cs), Math.floor((p + len - 1) / cs));
    this.pos = p + len;
    return this.#start + p;
  }
  #inc(a: number, b: number): void {
    const r = this.#refs;
    if (!r) return;
    if (b >= r.length) {
      const g = new Uint16Array(Math.max(b + 1, r.length * 2));
      g.set(r);
      this.#refs = g;
    }
    for (let k = a; k <= b; k++) this.#refs![k]!++;
  }
}

/** A growable list of u32 (compressed sizes planned by a stream's pre-pass). */
class U32List {
  #a = new Uint32Array(256);
  length = 0;
  push(v: number): void {
    if (this.length === this.#a.length) {
      const g = new Uint32Array(this.length * 2);
      g.set(this.#a);
      this.#a = g;
    }
    this.#a[this.length++] = v;
  }
  at(i: number): number {
    return this.#a[i]!;
  }
}

/** Raw-deflates a cluster as qemu does; `undefined` when that does not make it smaller. */
function deflateCluster(blk: Uint8Array): Uint8Array | undefined {
  const z = zlib.deflateRawSync(blk, { windowBits: 12, memLevel: 9 });
  return z.length < blk.length ? new Uint8Array(z.buffer, z.byteOffset, z.length) : undefined;
}

const EMPTY = new Uint8Array(0);

/** Puts of at least this many bytes bypass the {@linkcode Emitter}'s buffer. */
const DIRECT_WRITE = 256 * 1024;

/** Buffered writer of the file in ascending order; holes are skipped or zero-filled. */
class Emitter {
  #sink: Sink;
  #buf: Uint8Array = EMPTY;
  #size: number;
  #start = 0;
  #len = 0;
  #stream: boolean;
  constructor(sink: Sink, bufferSize: number) {
    this.#sink = sink;
    this.#stream = sink.kind === "stream";
    this.#size = bufferSize;
  }
  /** The buffer, allocated on first use (batches of data bypass it). */
  get #b(): Uint8Array {
    if (this.#buf === EMPTY) this.#buf = new Uint8Array(this.#size);
    return this.#buf;
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
    if (this.#len + data.length > this.#size) this.flush();
    if (data.length >= DIRECT_WRITE || data.length >= this.#size) {
      // Large data (a batch of clusters) go straight to the sink: no copy into the buffer.
      this.flush();
      this.#sink.writeAt(this.#start, data);
      this.#start += data.length;
      return;
    }
    this.#b.set(data, this.#len);
    this.#len += data.length;
  }
  zeros(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.#size - this.#len);
      this.#b.fill(0, this.#len, this.#len + k);
      this.#len += k;
      n -= k;
      if (this.#len === this.#size) this.flush();
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
  if (!Number.isSafeInteger(V) || V < 0 || V % 512 !== 0) {
    // qemu rounds the header's size down to 512: a partial last sector would be lost.
    throw new RangeError(`virtualSize must be a non-negative multiple of 512, found ${V}`);
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
  const compress = options.compress ?? false;
  if (compress && stream && options.transform) {
    throw new TypeError(
      "A compressed QCOW2 image cannot be streamed with a transform (the sizes are planned first)",
    );
  }
  const cb = Math.log2(cs);
  const batch = Math.max(
    cs,
    Math.floor((options.bufferSize ?? 4 * 1024 * 1024) / cs) * cs,
  );
  const bc = batch / cs;

  // Selected clusters, as runs (at most one per extent).
  const sel: BlockExtent[] = [];
  let selCount = 0;
  for (const e of ext) {
    let a = Math.floor(e.offset / cs);
    const b = Math.ceil((e.offset + e.length) / cs);
    const last = sel[sel.length - 1];
    if (last && a < last.start + last.count) a = last.start + last.count;
    if (b <= a) continue;
    if (last && last.start + last.count === a) last.count += b - a;
    else sel.push({ start: a, count: b - a });
    selCount += b - a;
  }
  const layout = planQcow2Layout(sel, cs, V);
  const dataStart = layout.dataCluster * cs;
  const prePass = stream && (skipZero || compress);
  const passes = prePass ? 2 : 1;
  const totalBytes = selCount * cs * passes;
  let doneBytes = 0;
  let bytesRead = 0;

  const buf = new Uint8Array(batch);
  let extIdx = 0;
  /**
   * Fills the bytes `[a, b)` of `buf` (which starts at cluster `c0`): the extent bytes from the
   * source, zeros everywhere else (between extents, past the end of the source). Only the gaps
   * are zeroed, so a batch of data costs no extra pass over the buffer.
   */
  const readSpan = (c0: number, a: number, b: number) => {
    const base = c0 * cs;
    let pos = a; // first byte of [a, b) not yet filled
    for (let i = extIdx; i < ext.length && ext[i]!.offset < b; i++) {
      const e = ext[i]!;
      const x = Math.max(a, e.offset), y = Math.min(b, e.offset + e.length, source.size);
      if (x >= y) continue;
      if (x > pos) buf.fill(0, pos - base, x - base);
      const n = source.readAt(x, buf.subarray(x - base, y - base));
      bytesRead += n;
      if (n < y - x) buf.fill(0, x + n - base, y - base);
      pos = y;
    }
    if (b > pos) buf.fill(0, pos - base, b - base);
  };
  /**
   * Reads clusters `[c0, c0 + k)` (only those in `want`, when given) into `buf`, zeros outside
   * the extents; returns the clusters that could not be read and were accepted by onReadError.
   */
  const readBatch = (c0: number, k: number, want: RunCursor | undefined): number[] => {
    // Clusters left out of `want` read as zeros; readSpan fills the rest.
    if (want) buf.fill(0, 0, k * cs);
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

  const header = makeHeader(version, cb, V, layout);
  const out = new Emitter(sink, batch);
  let unreadable = 0;
  let zeroClusters = 0;
  let dataCount = 0;
  let compressedCount = 0;
  let l2Tables = 0;
  const placer = new DataPlacer(cs, dataStart, compress);

  // Streams: decide every cluster first, then write the tables, then the data.
  let planned: RunList | undefined;
  let plannedBad: RunList | undefined;
  const sizes = compress && stream ? new U32List() : undefined; // 0: stored uncompressed
  if (stream) {
    planned = new RunList();
    plannedBad = new RunList();
    if (prePass) {
      for (const r of sel) {
        for (let c0 = r.start; c0 < r.start + r.count; c0 += bc) {
          const k = Math.min(bc, r.start + r.count - c0);
          const failed = readBatch(c0, k, undefined);
          let fi = 0;
          for (let i = 0; i < k; i++) {
            const c = c0 + i;
            if (failed[fi] === c) {
              fi++;
              plannedBad.add(c);
              continue;
            }
            const blk = buf.subarray(i * cs, (i + 1) * cs);
            if (skipZero && isZero(blk)) continue;
            planned.add(c);
            if (sizes) sizes.push(deflateCluster(blk)?.length ?? 0);
          }
          progress(k * cs);
        }
      }
      extIdx = 0;
      unreadable = plannedBad.count;
    } else {
      for (const r of sel) planned.add(r.start, r.count);
    }
    // Where every planned cluster will go (a dry run of the placer), for the refcounts; then
    // the same placement again for the L2 tables.
    const place = (p: DataPlacer, each: (c: number, at: number, len: number) => void) => {
      let n = 0;
      for (let i = 0; i < planned!.length; i++) {
        const a = planned!.start(i), m = planned!.size(i);
        for (let c = a; c < a + m; c++) {
          const len = sizes ? sizes.at(n) : 0;
          n++;
          each(c, len ? p.compressed(len) : p.normal(), len);
        }
      }
    };
    const dry = new DataPlacer(cs, dataStart, compress);
    place(dry, () => {});
    writeTables(out, layout, usedSlots(layout, planned), dry, header);
    const l2 = new L2Builder(layout, out);
    place(new DataPlacer(cs, dataStart, compress), (c, at, len) => {
      if (len) l2.addCompressed(c, at, len);
      else l2.add(c, at);
    });
    l2.finish();
    l2Tables = l2.tables;
  }

  // The data pass. Files: the L2 tables follow the data, each written when complete.
  const l2out = stream ? undefined : new Emitter(sink, Math.min(batch, 1024 * 1024));
  const l2b = l2out ? new L2Builder(layout, l2out) : undefined;
  const wantData = planned ? new RunCursor(planned) : undefined;
  const wantAny = planned ? new RunCursor(planned) : undefined;
  const isPlanned = planned ? new RunCursor(planned) : undefined;
  const isBad = plannedBad ? new RunCursor(plannedBad) : undefined;
  const keep: number[] = [];
  for (const r of sel) {
    for (let c0 = r.start; c0 < r.start + r.count; c0 += bc) {
      const k = Math.min(bc, r.start + r.count - c0);
      keep.length = 0;
      if (isPlanned && wantData && wantAny && isBad) {
        // Stream: read only what the plan stores; transform every readable cluster.
        let any = false;
        for (let c = c0; c < c0 + k; c++) if (wantAny.has(c)) any = true;
        let failed: number[] = [];
        if (any) failed = readBatch(c0, k, wantData);
        else buf.fill(0, 0, k * cs);
        for (let i = 0; i < k; i++) {
          const c = c0 + i;
          if (isBad.has(c)) continue;
          const blk = buf.subarray(i * cs, (i + 1) * cs);
          const isData = isPlanned.has(c);
          if (isData && failed.includes(c)) {
            if (sizes) {
              throw new ReadError(
                source.name,
                c * cs,
                cs,
                "cluster became unreadable after the pre-pass",
              );
            }
            keep.push(i); // unreadable now, not in the pre-pass: stored as zeros
            unreadable++;
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
        const failed = readBatch(c0, k, undefined);
        let fi = 0;
        for (let i = 0; i < k; i++) {
          const c = c0 + i;
          if (failed[fi] === c) {
            fi++;
            unreadable++;
            continue;
          }
          const blk = buf.subarray(i * cs, (i + 1) * cs);
          options.transform?.(c * cs, blk);
          if (skipZero && isZero(blk)) zeroClusters++;
          else keep.push(i);
        }
      }
      if (compress) {
        for (const i of keep) {
          const blk = buf.subarray(i * cs, (i + 1) * cs);
          const z = deflateCluster(blk);
          if (sizes && (z?.length ?? 0) !== sizes.at(dataCount)) {
            throw new Error(
              `Compression of the cluster at byte 0x${
                ((c0 + i) * cs).toString(16)
              } differed between passes`,
            );
          }
          if (z) {
            const at = placer.compressed(z.length);
            out.put(at, z);
            l2b?.addCompressed(c0 + i, at, z.length);
            compressedCount++;
          } else {
            const at = placer.normal();
            out.put(at, blk);
            l2b?.add(c0 + i, at);
          }
          dataCount++;
        }
      } else if (keep.length > 0) {
        // Pack the kept clusters and write them in one call.
        let first = -1;
        for (let j = 0; j < keep.length; j++) {
          const i = keep[j]!;
          if (i !== j) buf.copyWithin(j * cs, i * cs, (i + 1) * cs);
          const at = placer.normal();
          if (first < 0) first = at;
          l2b?.add(c0 + i, at);
          dataCount++;
        }
        out.put(first, buf.subarray(0, keep.length * cs));
      }
      progress(k * cs);
    }
  }
  out.flush();
  if (l2b && l2out) {
    // Seekable sink: L2 tables done, then L1 and refcounts, the header last.
    l2b.finish();
    l2out.flush();
    l2Tables = l2b.tables;
    const meta = new Emitter(sink, batch);
    writeTables(meta, layout, l2b.used, placer, undefined);
    meta.flush();
    sink.writeAt(0, padCluster(encodeQcow2Header(header), cs));
  } else if (planned && dataCount !== planned.count) {
    throw new Error(`Internal error: planned ${planned.count} data clusters, wrote ${dataCount}`);
  }
  const imageSize = dataStart + placer.clusters * cs;
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
    dataClusters: dataCount,
    compressedClusters: compressedCount,
    zeroClusters,
    unreadableClusters: unreadable,
    l2Tables,
    bytesRead,
    header,
  };
}

function padCluster(b: Uint8Array, cs: number): Uint8Array {
  const out = new Uint8Array(cs);
  out.set(b.subarray(0, cs));
  return out;
}

/** Which L2 slots the data clusters `data` use (one flag per reserved slot). */
function usedSlots(l: Qcow2Layout, data: RunList): Uint8Array {
  const used = new Uint8Array(l.l2Slots);
  const n = l.clusterSize / 8;
  const slots = new SlotMap(l.l1Runs);
  let last = -1;
  for (let k = 0; k < data.length; k++) {
    const a = Math.floor(data.start(k) / n);
    const b = Math.floor((data.start(k) + data.size(k) - 1) / n);
    for (let i = Math.max(a, last + 1); i <= b; i++) used[slots.slot(i)] = 1;
    last = Math.max(last, b);
  }
  return used;
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
 * Emits cluster 0 (when `header` is given), the L1 table, the refcount table and the
 * referenced refcount blocks, in file order, for the data placed by `data` and the used L2
 * slots `used`.
 */
function writeTables(
  out: Emitter,
  l: Qcow2Layout,
  used: Uint8Array,
  data: DataPlacer,
  header: Qcow2Header | undefined,
): void {
  const dataCount = data.clusters;
  const cs = l.clusterSize;
  if (header) out.put(0, padCluster(encodeQcow2Header(header), cs));

  // L1 table: slot k serves the k-th reserved L1 index.
  const l1 = new Uint8Array(l.l1Clusters * cs);
  let k = 0;
  for (const r of l.l1Runs) {
    for (let i = r.start; i < r.start + r.count; i++, k++) {
      if (!used[k]) continue;
      be64(l1, i * 8, (l.l2Cluster + k) * cs);
      l1[i * 8] = l1[i * 8]! | COPIED_HI;
    }
  }
  if (l1.length) out.put(cs, l1);

  // Refcount table and blocks. Used clusters: [0, refcountBlockCluster + nBlocks) (header,
  // L1, refcount table, referenced refcount blocks), the used L2 slots, the data.
  const per = l.refcountsPerBlock;
  const totalClusters = l.dataCluster + dataCount;
  const nBlocks = Math.ceil(totalClusters / per);
  const rt = new Uint8Array(l.refcountTableClusters * cs);
  for (let b = 0; b < nBlocks; b++) be64(rt, b * 8, (l.refcountBlockCluster + b) * cs);
  out.put(l.refcountTableCluster * cs, rt);
  const ones = new Uint8Array(cs);
  for (let i = 1; i < cs; i += 2) ones[i] = 1; // 16-bit big-endian refcount 1
  const block = new Uint8Array(cs);
  const head = l.refcountBlockCluster + nBlocks;
  const fillOnes = (a: number, x: number, y: number) => {
    if (x < y) block.set(ones.subarray((x - a) * 2, (y - a) * 2), (x - a) * 2);
  };
  for (let b = 0; b < nBlocks; b++) {
    block.fill(0);
    const a = b * per, z = a + per;
    fillOnes(a, a, Math.min(z, head));
    const s0 = Math.max(a, l.l2Cluster), s1 = Math.min(z, l.l2Cluster + l.l2Slots);
    for (let c = s0; c < s1; c++) if (used[c - l.l2Cluster]) block[(c - a) * 2 + 1] = 1;
    const d0 = Math.max(a, l.dataCluster), d1 = Math.min(z, l.dataCluster + dataCount);
    if (!data.counted) fillOnes(a, d0, d1);
    else {
      for (let c = d0; c < d1; c++) {
        const r = data.refcount(c - l.dataCluster);
        block[(c - a) * 2] = r >>> 8;
        block[(c - a) * 2 + 1] = r & 0xff;
      }
    }
    out.put((l.refcountBlockCluster + b) * cs, block);
  }
}
