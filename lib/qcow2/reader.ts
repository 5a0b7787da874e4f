/**
 * The QCOW2 reader: {@linkcode Qcow2Reader}, a random-access {@linkcode Source} over the guest
 * disk of a QCOW2 image, so every walker runs over a QCOW2 file as over a raw one.
 *
 * @module
 */
import { lazyZlib as zlib } from "../_internal/node_builtin.ts";
import { CorruptImageError, UnsupportedFeatureError } from "../errors.ts";
import type { ByteExtent } from "../_internal/extents.ts";
import { u32be } from "../_internal/bytes.ts";
import type { Source } from "../io/types.ts";
import { readFully } from "../io/util.ts";
import {
  parseQcow2Header,
  QCOW2_INCOMPAT_CORRUPT,
  QCOW2_INCOMPAT_DATA_FILE,
  QCOW2_INCOMPAT_DIRTY,
  QCOW2_INCOMPAT_EXTL2,
  QCOW2_INCOMPAT_KNOWN,
  QCOW2_MAGIC,
  type Qcow2Header,
  qcow2RequiredL1Size,
} from "./header.ts";

/** Options of {@linkcode Qcow2Reader.open}. */
export interface Qcow2ReaderOptions {
  /**
   * How many L2 tables the LRU cache keeps (each is one cluster). Default: enough for 32 MiB
   * of tables (qemu's default cap), at least 2, at most the number the image has.
   */
  l2CacheTables?: number;
}

/**
 * Probes `source` for the QCOW2 magic and returns the version field, or `undefined` when the
 * first bytes are not `QFI\xfb`. Nothing else is validated (see {@linkcode Qcow2Reader.open}).
 *
 * @example
 * ```ts
 * import { MemorySource } from "../io/memory.ts";
 * import { probeQcow2 } from "./reader.ts";
 * const b = new Uint8Array(8);
 * b.set([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 2]);
 * console.assert(probeQcow2(new MemorySource(b))?.version === 2);
 * console.assert(probeQcow2(new MemorySource(new Uint8Array(8))) === undefined);
 * ```
 */
export function probeQcow2(source: Source): { version: number } | undefined {
  if (source.size < 8) return undefined;
  const b = new Uint8Array(8);
  if (source.readAt(0, b) < 8) return undefined;
  if (u32be(b, 0) !== QCOW2_MAGIC) return undefined;
  return { version: u32be(b, 4) };
}

/** One extent of {@linkcode Qcow2Reader.map}. */
export interface Qcow2MapExtent {
  /** First guest byte. */
  offset: number;
  /** Length in bytes. */
  length: number;
  /** How the range reads. */
  kind: "data" | "compressed" | "zero" | "unallocated";
  /** For `"data"`: the file offset of the first byte. */
  hostOffset?: number;
}

/** Cluster kinds of a decoded L2 entry. */
const UNALLOC = 0, ZERO = 1, NORMAL = 2, COMPRESSED = 3, SUB = 4;

/** A decoded, validated L2 table. */
interface L2Table {
  /** Kind per entry. */
  kind: Uint8Array;
  /** Host offset (NORMAL/SUB: cluster offset; COMPRESSED: byte offset). */
  host: Float64Array;
  /** COMPRESSED: bytes to read; SUB: allocation bitmap (allocated on first use). */
  aux: Uint32Array;
  /** SUB: zero bitmap (allocated on first use). */
  aux2: Uint32Array;
}

const MIB = 1024 * 1024;
const EMPTY_U32 = new Uint32Array(0);

function hex(n: number): string {
  return "0x" + n.toString(16);
}

/**
 * A QCOW2 image as a {@linkcode Source} of its guest disk: `readAt` and `size` speak guest
 * bytes. Versions 2 and 3 as qemu writes them are read: cluster sizes 512 B to 2 MiB, any
 * refcount width (refcounts are not needed to read), zero clusters, compressed clusters (zlib;
 * zstd where `node:zlib` has it), extended L2 entries (subclusters), internal snapshots (the
 * active L1 is read), dirty and corrupt bits. Backing files, external data files, encryption
 * and unknown incompatible features are refused with {@linkcode UnsupportedFeatureError}.
 *
 * Hostile images are stopped with {@linkcode CorruptImageError} (byte offset in hex) or
 * {@linkcode LimitExceededError}: every table must lie inside the file, be aligned, and not
 * overlap the header, the L1 table or the refcount table; data may not point into metadata.
 * Memory is bounded by the L1 table (≤ 32 MiB, checked against the file size first) and the L2
 * cache.
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "../io/memory.ts";
 * import { Qcow2Reader } from "./reader.ts";
 * import { writeQcow2 } from "./writer.ts";
 * const raw = new Uint8Array(1 << 20);
 * raw.fill(0xab, 4096, 8192);
 * const out = new MemorySink();
 * writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: raw.length }], {
 *   virtualSize: raw.length,
 *   clusterSize: 4096,
 * });
 * const r = Qcow2Reader.open(new MemorySource(out.bytes()));
 * const buf = new Uint8Array(8192);
 * r.readAt(0, buf);
 * console.assert(buf[0] === 0 && buf[4096] === 0xab);
 * console.assert(r.allocatedExtents()[0]?.offset === 4096);
 * ```
 */
export class Qcow2Reader implements Source {
  /** The parsed header. */
  readonly header: Qcow2Header;
  /** The underlying source's name. */
  readonly name: string;
  /** Virtual disk size in bytes (the header's size rounded down to 512, as qemu does). */
  readonly size: number;
  /** Cluster size in bytes. */
  readonly clusterSize: number;
  /** The dirty bit is set (harmless for reading: refcounts are not used). */
  readonly dirty: boolean;
  /** The corrupt bit is set: qemu still reads such images; callers may want to warn. */
  readonly markedCorrupt: boolean;

  readonly #src: Source;
  readonly #fileSize: number;
  readonly #cb: number;
  readonly #cs: number;
  readonly #extL2: boolean;
  readonly #v3: boolean;
  readonly #l2Entries: number;
  readonly #l2Span: number;
  readonly #subSize: number;
  readonly #l1: Float64Array;
  readonly #l2Sorted: Float64Array;
  readonly #meta: Array<[number, number, string]>;
  readonly #cacheCap: number;
  readonly #cache = new Map<number, L2Table>();
  readonly #inflate: (input: Uint8Array, cs: number) => Uint8Array;
  #lastOff = -1;
  #last: L2Table | undefined;
  #cHost = -1;
  #cData: Uint8Array | undefined;
  #l2Raw: Uint8Array;

  private constructor(source: Source, header: Qcow2Header, options: Qcow2ReaderOptions) {
    this.#src = source;
    this.header = header;
    this.name = source.name;
    this.#fileSize = source.size;
    this.#cb = header.clusterBits;
    this.#cs = 2 ** this.#cb;
    this.clusterSize = this.#cs;
    this.#v3 = header.version >= 3;
    this.#extL2 = (header.incompatibleFeatures & QCOW2_INCOMPAT_EXTL2) !== 0n;
    this.#l2Entries = this.#cs / (this.#extL2 ? 16 : 8);
    this.#l2Span = this.#l2Entries * this.#cs;
    this.#subSize = this.#cs / 32;
    this.size = Math.floor(header.size / 512) * 512;
    this.dirty = (header.incompatibleFeatures & QCOW2_INCOMPAT_DIRTY) !== 0n;
    this.markedCorrupt = (header.incompatibleFeatures & QCOW2_INCOMPAT_CORRUPT) !== 0n;
    this.#l2Raw = new Uint8Array(this.#cs);
    this.#inflate = header.compressionType === 1 ? inflateZstd : inflateZlib;

    const cs = this.#cs;
    const fsz = this.#fileSize;
    // Metadata regions that data and L2 tables must not overlap.
    const meta: Array<[number, number, string]> = [[0, cs, "the header"]];
    const l1Bytes = header.l1Size * 8;
    if (l1Bytes > 0) {
      meta.push([header.l1TableOffset, header.l1TableOffset + l1Bytes, "the L1 table"]);
    }
    const rtEnd = header.refcountTableOffset + header.refcountTableClusters * cs;
    meta.push([header.refcountTableOffset, rtEnd, "the refcount table"]);
    for (let i = 0; i < meta.length; i++) {
      for (let j = 0; j < i; j++) {
        const a = meta[i]!, b = meta[j]!;
        if (a[0] < b[1] && b[0] < a[1]) {
          throw new CorruptImageError(
            `Cannot read QCOW2 image ${this.name}: ${a[2]} at ${hex(a[0])} overlaps ${b[2]} at ${
              hex(b[0])
            }`,
            { format: "qcow2", structure: a[2], offset: a[0] },
          );
        }
      }
    }
    this.#meta = meta;

    // Active L1 table: only the entries that map the virtual disk are needed.
    const needed = Math.min(
      header.l1Size,
      qcow2RequiredL1Size(this.size, this.#cb, this.#cb - (this.#extL2 ? 4 : 3)),
    );
    const l1End = header.l1TableOffset + needed * 8;
    if (needed > 0 && l1End > fsz) {
      throw new CorruptImageError(
        `Cannot read QCOW2 image ${this.name}: the L1 table (${needed} entries at ${
          hex(header.l1TableOffset)
        }) passes the end of the file (${fsz} bytes) (byte 0x28)`,
        { format: "qcow2", structure: "header", field: "l1_table_offset", offset: 0x28 },
      );
    }
    const l1raw = new Uint8Array(needed * 8);
    if (needed > 0) readFully(source, header.l1TableOffset, l1raw);
    this.#l1 = new Float64Array(needed);
    const l2set: number[] = [];
    for (let i = 0; i < needed; i++) {
      const at = header.l1TableOffset + i * 8;
      const hi = u32be(l1raw, i * 8) & 0x00ffffff, lo = u32be(l1raw, i * 8 + 4) & 0xfffffe00;
      if (hi === 0 && lo === 0) continue;
      const what = `L1 entry ${i} (byte ${hex(at)})`;
      if (hi > 0x1fffff) {
        throw this.#corrupt(`${what} points past 2^53`, at, "L1 table");
      }
      const off = hi * 0x100000000 + (lo >>> 0);
      if (off % cs !== 0) {
        throw this.#corrupt(
          `${what}: L2 table offset ${hex(off)} is not a multiple of the cluster size`,
          at,
          "L1 table",
        );
      }
      if (off + cs > fsz) {
        throw this.#corrupt(
          `${what}: L2 table at ${hex(off)} passes the end of the file (${fsz} bytes)`,
          at,
          "L1 table",
        );
      }
      const hit = this.#metaHit(off, off + cs);
      if (hit) {
        throw this.#corrupt(`${what}: L2 table at ${hex(off)} overlaps ${hit}`, at, "L1 table");
      }
      this.#l1[i] = off;
      l2set.push(off);
    }
    l2set.sort((a, b) => a - b);
    for (let i = 1; i < l2set.length; i++) {
      if (l2set[i] === l2set[i - 1]) {
        // Never produced by qemu; refusing it bounds the work of a scan by the file size.
        throw this.#corrupt(
          `two L1 entries share the L2 table at ${hex(l2set[i]!)}`,
          header.l1TableOffset,
          "L1 table",
        );
      }
    }
    const uniq = l2set;
    this.#l2Sorted = Float64Array.from(uniq);
    const want = options.l2CacheTables ?? Math.max(2, Math.floor(32 * MIB / cs));
    if (!Number.isSafeInteger(want) || want < 1) {
      throw new RangeError(`l2CacheTables must be a positive integer, found ${want}`);
    }
    this.#cacheCap = Math.max(1, Math.min(want, uniq.length));
  }

  /**
   * Opens a QCOW2 image: reads and validates the header, refuses unsupported features, reads
   * and validates the active L1 table.
   *
   * @throws {CorruptImageError} invalid header or L1 table
   * @throws {UnsupportedFeatureError} backing file, external data file, encryption, unknown
   *   incompatible features, zstd without a zstd decoder
   * @throws {LimitExceededError} tables above qemu's caps
   */
  static open(source: Source, options: Qcow2ReaderOptions = {}): Qcow2Reader {
    const fsz = source.size;
    const first = new Uint8Array(Math.min(fsz, 4096));
    readFully(source, 0, first);
    if (first.length < 8 || u32be(first, 0) !== QCOW2_MAGIC) {
      throw new CorruptImageError(
        `Cannot read QCOW2 image ${source.name}: no QCOW2 magic (byte 0x0)`,
        { format: "qcow2", structure: "header", field: "magic", offset: 0 },
      );
    }
    let bytes = first;
    if (first.length >= 24) {
      const cb = u32be(first, 20);
      if (cb >= 9 && cb <= 21 && 2 ** cb > first.length && fsz > first.length) {
        bytes = new Uint8Array(Math.min(fsz, 2 ** cb));
        readFully(source, 0, bytes);
      }
    }
    const h = parseQcow2Header(bytes);
    const name = source.name;
    if (h.cryptMethod !== 0) {
      throw new UnsupportedFeatureError(
        "qcow2",
        "encryption",
        `Cannot read QCOW2 image ${name}: it is encrypted (${
          h.cryptMethod === 1 ? "AES" : "LUKS"
        }), which is not supported`,
      );
    }
    if (h.backingFileOffset !== 0) {
      throw new UnsupportedFeatureError(
        "qcow2",
        "backing file",
        `Cannot read QCOW2 image ${name}: it has a backing file${
          h.backingFileName !== undefined ? ` "${h.backingFileName}"` : ""
        }, which is not supported (convert it with qemu-img first)`,
      );
    }
    if ((h.incompatibleFeatures & QCOW2_INCOMPAT_DATA_FILE) !== 0n) {
      throw new UnsupportedFeatureError(
        "qcow2",
        "external data file",
        `Cannot read QCOW2 image ${name}: its data lives in an external data file, which is not supported`,
      );
    }
    const unknown = h.incompatibleFeatures & ~QCOW2_INCOMPAT_KNOWN;
    if (unknown !== 0n) {
      throw new UnsupportedFeatureError(
        "qcow2",
        `incompatible features 0x${unknown.toString(16)}`,
        `Cannot read QCOW2 image ${name}: unknown incompatible feature bits 0x${
          unknown.toString(16)
        } (byte 0x48)`,
      );
    }
    if (h.compressionType === 1 && typeof zlib.zstdDecompressSync !== "function") {
      throw new UnsupportedFeatureError(
        "qcow2",
        "zstd compression",
        `Cannot read QCOW2 image ${name}: zstd-compressed images need a runtime whose node:zlib has zstdDecompressSync`,
      );
    }
    return new Qcow2Reader(source, h, options);
  }

  #corrupt(message: string, offset: number, structure: string): CorruptImageError {
    return new CorruptImageError(
      `Cannot read QCOW2 image ${this.name}: ${message}`,
      { format: "qcow2", structure, offset },
    );
  }

  /** Returns the name of a metadata region overlapping `[a, b)`, if any. */
  #metaHit(a: number, b: number): string | undefined {
    for (const m of this.#meta) if (a < m[1] && m[0] < b) return m[2];
    return undefined;
  }

  /** Returns true when `[a, b)` overlaps an active L2 table. */
  #l2Hit(a: number, b: number): boolean {
    const s = this.#l2Sorted, cs = this.#cs;
    // First table whose end is > a.
    let lo = 0, hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! + cs <= a) lo = mid + 1;
      else hi = mid;
    }
    return lo < s.length && s[lo]! < b;
  }

  /** Loads (through the LRU cache) and validates the L2 table at `off`. */
  #table(off: number): L2Table {
    if (off === this.#lastOff && this.#last) return this.#last;
    const t = this.#cachedTable(off);
    this.#lastOff = off;
    this.#last = t;
    return t;
  }

  #cachedTable(off: number): L2Table {
    const c = this.#cache.get(off);
    if (c) {
      this.#cache.delete(off);
      this.#cache.set(off, c);
      return c;
    }
    const t = this.#decode(off);
    if (this.#cache.size >= this.#cacheCap) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(off, t);
    return t;
  }

  #decode(off: number): L2Table {
    const cs = this.#cs, n = this.#l2Entries, fsz = this.#fileSize;
    const raw = this.#l2Raw;
    readFully(this.#src, off, raw);
    const t: L2Table = {
      kind: new Uint8Array(n),
      host: new Float64Array(n),
      aux: EMPTY_U32,
      aux2: EMPTY_U32,
    };
    const esz = this.#extL2 ? 16 : 8;
    const cb = this.#cb;
    const x32 = 30 - (cb - 8); // compressed offset bits above bit 32: x - 32
    const nsMask = (1 << (cb - 8)) - 1;
    for (let j = 0; j < n; j++) {
      const p = j * esz;
      const hiRaw = u32be(raw, p), loRaw = u32be(raw, p + 4);
      const at = off + p;
      const what = `L2 entry ${j} (byte ${hex(at)})`;
      if ((hiRaw & 0x40000000) !== 0) {
        // Compressed.
        const hiOff = hiRaw & ((1 << x32) - 1);
        const nsect = (hiRaw >>> x32) & nsMask;
        if (hiOff > 0x1fffff) throw this.#corrupt(`${what}: compressed offset past 2^53`, at, "L2");
        const coff = hiOff * 0x100000000 + loRaw;
        if (coff >= fsz) {
          throw this.#corrupt(
            `${what}: compressed data at ${hex(coff)} lies past the end of the file (${fsz} bytes)`,
            at,
            "L2",
          );
        }
        const csize = (nsect + 1) * 512 - (coff % 512);
        const len = Math.min(csize, fsz - coff);
        const hit = this.#metaHit(coff, coff + len) ??
          (this.#l2Hit(coff, coff + len) ? "an L2 table" : undefined);
        if (hit) {
          throw this.#corrupt(`${what}: compressed data at ${hex(coff)} overlaps ${hit}`, at, "L2");
        }
        t.kind[j] = COMPRESSED;
        t.host[j] = coff;
        if (t.aux === EMPTY_U32) t.aux = new Uint32Array(n);
        t.aux[j] = len;
        continue;
      }
      const hi = hiRaw & 0x00ffffff, lo = (loRaw & 0xfffffe00) >>> 0;
      const hostOff = hi * 0x100000000 + lo;
      let kind: number;
      let abits = 0, zbits = 0;
      if (this.#extL2) {
        abits = u32be(raw, p + 12);
        zbits = u32be(raw, p + 8);
        if ((abits & zbits) !== 0) {
          throw this.#corrupt(
            `${what}: subclusters marked both allocated and zero (bitmap 0x${zbits.toString(16)}${
              abits.toString(16).padStart(8, "0")
            })`,
            at,
            "L2",
          );
        }
        if (hostOff === 0 && abits !== 0) {
          throw this.#corrupt(
            `${what}: an unallocated cluster has allocated subclusters (0x${abits.toString(16)})`,
            at,
            "L2",
          );
        }
        if (zbits === 0xffffffff) kind = ZERO;
        else if (abits === 0) kind = zbits === 0 ? UNALLOC : SUB;
        else if (abits === 0xffffffff) kind = NORMAL;
        else kind = SUB;
      } else if ((loRaw & 1) !== 0) {
        if (!this.#v3) {
          throw this.#corrupt(`${what}: zero cluster flag in a version 2 image`, at, "L2");
        }
        kind = ZERO;
      } else kind = hostOff === 0 ? UNALLOC : NORMAL;
      if ((kind === NORMAL || (kind === SUB && abits !== 0)) && hostOff !== 0) {
        if (hi > 0x1fffff) throw this.#corrupt(`${what}: data offset past 2^53`, at, "L2");
        if (hostOff % cs !== 0) {
          throw this.#corrupt(
            `${what}: data offset ${hex(hostOff)} is not a multiple of the cluster size`,
            at,
            "L2",
          );
        }
        if (hostOff >= fsz) {
          throw this.#corrupt(
            `${what}: data cluster at ${hex(hostOff)} lies past the end of the file (${fsz} bytes)`,
            at,
            "L2",
          );
        }
        const hit = this.#metaHit(hostOff, hostOff + cs) ??
          (this.#l2Hit(hostOff, hostOff + cs) ? "an L2 table" : undefined);
        if (hit) {
          throw this.#corrupt(`${what}: data cluster at ${hex(hostOff)} overlaps ${hit}`, at, "L2");
        }
      }
      t.kind[j] = kind;
      t.host[j] = hostOff;
      if (kind === SUB) {
        if (t.aux === EMPTY_U32) t.aux = new Uint32Array(n);
        if (t.aux2 === EMPTY_U32) t.aux2 = new Uint32Array(n);
        t.aux[j] = abits;
        t.aux2[j] = zbits;
      }
    }
    return t;
  }

  /**
   * Maps guest byte `g` (< size) to a run `[g, g + length)` of one kind inside one cluster.
   * Returns the kind and, for NORMAL, the host offset of `g`; for COMPRESSED, the entry.
   */
  #map(g: number, out: { kind: number; host: number; len: number; clen: number }): void {
    const cs = this.#cs;
    const l1i = Math.floor(g / this.#l2Span);
    const within = g % cs;
    out.len = cs - within;
    const l2off = l1i < this.#l1.length ? this.#l1[l1i]! : 0;
    if (l2off === 0) {
      out.kind = UNALLOC;
      out.len = this.#l2Span - (g % this.#l2Span); // the whole unmapped L2 range
      return;
    }
    const t = this.#table(l2off);
    const j = Math.floor((g % this.#l2Span) / cs);
    const kind = t.kind[j]!;
    out.kind = kind;
    if (kind === NORMAL) out.host = t.host[j]! + within;
    else if (kind === COMPRESSED) {
      out.host = t.host[j]!;
      out.clen = t.aux[j]!;
    } else if (kind === SUB) {
      const ss = this.#subSize;
      const si = Math.floor(within / ss);
      const a = t.aux[j]!, z = t.aux2[j]!;
      const state = (x: number) => (z >>> x) & 1 ? ZERO : (a >>> x) & 1 ? NORMAL : UNALLOC;
      const s0 = state(si);
      let sj = si + 1;
      while (sj < 32 && state(sj) === s0) sj++;
      out.kind = s0;
      out.len = sj * ss - within;
      if (s0 === NORMAL) out.host = t.host[j]! + within;
    }
  }

  #decompress(coff: number, clen: number): Uint8Array {
    if (this.#cHost === coff && this.#cData) return this.#cData;
    const input = new Uint8Array(clen);
    const n = this.#src.readAt(coff, input);
    let out: Uint8Array;
    try {
      out = this.#inflate(input.subarray(0, n), this.#cs);
    } catch (e) {
      throw new CorruptImageError(
        `Cannot read QCOW2 image ${this.name}: compressed cluster at ${
          hex(coff)
        } does not decompress (${(e as Error).message})`,
        { format: "qcow2", structure: "compressed cluster", offset: coff },
        { cause: e },
      );
    }
    if (out.length !== this.#cs) {
      throw new CorruptImageError(
        `Cannot read QCOW2 image ${this.name}: compressed cluster at ${
          hex(coff)
        } decompresses to ${out.length} bytes, expected ${this.#cs}`,
        { format: "qcow2", structure: "compressed cluster", offset: coff },
      );
    }
    this.#cHost = coff;
    this.#cData = out;
    return out;
  }

  /**
   * Reads guest bytes at `offset` into `buf`; short only at the end of the virtual disk.
   * Unallocated and zero clusters read as zeros; runs of clusters contiguous in the file are
   * read with one call to the underlying source.
   */
  readAt(offset: number, buf: Uint8Array): number {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Invalid offset ${offset}`);
    }
    if (offset >= this.size) return 0;
    const n = Math.min(buf.length, this.size - offset);
    const m = { kind: 0, host: 0, len: 0, clen: 0 };
    let runHost = -1, runBuf = 0, runLen = 0;
    const flush = () => {
      if (runLen === 0) return;
      const dst = buf.subarray(runBuf, runBuf + runLen);
      const got = runHost < this.#fileSize ? this.#src.readAt(runHost, dst) : 0;
      if (got < runLen) dst.fill(0, got);
      runLen = 0;
    };
    let pos = 0;
    while (pos < n) {
      const g = offset + pos;
      this.#map(g, m);
      const len = Math.min(m.len, n - pos);
      if (m.kind === NORMAL) {
        if (runLen > 0 && runHost + runLen === m.host && runBuf + runLen === pos) {
          runLen += len;
        } else {
          flush();
          runHost = m.host;
          runBuf = pos;
          runLen = len;
        }
      } else if (m.kind === COMPRESSED) {
        flush();
        const data = this.#decompress(m.host, m.clen);
        const within = g % this.#cs;
        buf.set(data.subarray(within, within + len), pos);
      } else {
        buf.fill(0, pos, pos + len);
      }
      pos += len;
    }
    flush();
    return n;
  }

  /**
   * The whole virtual disk as consecutive extents of one kind each, like `qemu-img map`:
   * `"data"` (with the host offset of the extent's first byte; adjacent data extents are merged
   * only when contiguous in the file), `"compressed"`, `"zero"` (zero flag or zero
   * subclusters) and `"unallocated"`. Reads every active L2 table once.
   *
   * @example
   * ```ts
   * import { MemorySink, MemorySource } from "../io/memory.ts";
   * import { Qcow2Reader } from "./reader.ts";
   * import { writeQcow2 } from "./writer.ts";
   * const raw = new Uint8Array(65536).fill(1, 8192, 12288);
   * const out = new MemorySink();
   * writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: raw.length }], {
   *   virtualSize: raw.length,
   *   clusterSize: 4096,
   * });
   * const m = Qcow2Reader.open(new MemorySource(out.bytes())).map();
   * console.assert(m.length === 3 && m[1]!.kind === "data" && m[1]!.offset === 8192);
   * ```
   */
  map(): Qcow2MapExtent[] {
    const out: Qcow2MapExtent[] = [];
    const m = { kind: 0, host: 0, len: 0, clen: 0 };
    const names = ["unallocated", "zero", "data", "compressed"] as const;
    let g = 0;
    while (g < this.size) {
      this.#map(g, m);
      const len = Math.min(m.len, this.size - g);
      const kind = names[m.kind]!;
      const last = out[out.length - 1];
      if (
        last && last.kind === kind &&
        (kind !== "data" || last.hostOffset! + last.length === m.host)
      ) {
        last.length += len;
      } else {
        const e: Qcow2MapExtent = { offset: g, length: len, kind };
        if (kind === "data") e.hostOffset = m.host;
        out.push(e);
      }
      g += len;
    }
    return out;
  }

  /**
   * Guest byte ranges backed by data (normal or compressed clusters, allocated subclusters),
   * sorted and merged, clipped to the virtual size. Zero and unallocated clusters are left
   * out. Reads every active L2 table once.
   */
  allocatedExtents(): ByteExtent[] {
    const out: ByteExtent[] = [];
    // The run being merged, [runA, runB): one object per run, not per cluster.
    let runA = 0, runB = 0;
    const size = this.size;
    const add = (a: number, len: number) => {
      const b = Math.min(a + len, size);
      if (b <= a) return;
      if (runB > runA && runB === a) runB = b;
      else {
        if (runB > runA) out.push({ offset: runA, length: runB - runA });
        runA = a;
        runB = b;
      }
    };
    const cs = this.#cs, ss = this.#subSize;
    for (let i = 0; i < this.#l1.length; i++) {
      const l2off = this.#l1[i]!;
      if (l2off === 0) continue;
      const t = this.#table(l2off);
      const kinds = t.kind;
      const base = i * this.#l2Span;
      const m = Math.min(this.#l2Entries, Math.ceil((size - base) / cs));
      for (let j = 0; j < m; j++) {
        const k = kinds[j]!;
        if (k === NORMAL || k === COMPRESSED) {
          // A run of data clusters at once.
          let e = j + 1;
          while (e < m && (kinds[e] === NORMAL || kinds[e] === COMPRESSED)) e++;
          add(base + j * cs, (e - j) * cs);
          j = e - 1;
        } else if (k === SUB) {
          const a = t.aux[j]!;
          const g = base + j * cs;
          for (let s = 0; s < 32; s++) if ((a >>> s) & 1) add(g + s * ss, ss);
        }
      }
    }
    if (runB > runA) out.push({ offset: runA, length: runB - runA });
    return out;
  }

  /** Closes the underlying source. */
  close(): void {
    this.#cache.clear();
    this.#last = undefined;
    this.#cData = undefined;
    this.#src.close();
  }
}

function inflateZlib(input: Uint8Array, cs: number): Uint8Array {
  return new Uint8Array(zlib.inflateRawSync(input, { maxOutputLength: cs }));
}

/**
 * Length of the zstd frame at the start of `b` (magic, header, blocks, optional checksum), so
 * the sector slack after it (often the start of the next compressed cluster) is not fed to the
 * decoder. Skippable frames are measured too. Throws on a malformed or truncated frame.
 */
export function zstdFrameLength(b: Uint8Array): number {
  const magic = b.length >= 4 ? (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0 : 0;
  if ((magic & 0xfffffff0) === 0x184d2a50) {
    if (b.length < 8) throw new Error("truncated skippable frame");
    const n = (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
    if (8 + n > b.length) throw new Error("truncated skippable frame");
    return 8 + n;
  }
  if (magic !== 0xfd2fb528) throw new Error("not a zstd frame");
  if (b.length < 5) throw new Error("truncated zstd frame header");
  const fhd = b[4]!;
  const fcsFlag = fhd >>> 6, single = (fhd >>> 5) & 1, checksum = (fhd >>> 2) & 1;
  const dictFlag = fhd & 3;
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  const dictBytes = [0, 1, 2, 4][dictFlag]!;
  let p = 5 + (single ? 0 : 1) + dictBytes + fcsBytes;
  for (let guard = 0;; guard++) {
    if (p + 3 > b.length || guard > b.length) throw new Error("truncated zstd frame");
    const h = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
    const last = h & 1, type = (h >>> 1) & 3, size = h >>> 3;
    if (type === 3) throw new Error("reserved zstd block type");
    p += 3 + (type === 1 ? 1 : size);
    if (last) break;
  }
  if (checksum) p += 4;
  if (p > b.length) throw new Error("truncated zstd frame");
  return p;
}

function inflateZstd(input: Uint8Array, cs: number): Uint8Array {
  const z = zlib as unknown as {
    zstdDecompressSync(b: Uint8Array, o: { maxOutputLength: number }): Uint8Array;
  };
  // qemu decodes frame after frame until the cluster is full; do the same, frame by frame.
  const out = new Uint8Array(cs);
  let got = 0, p = 0;
  while (got < cs && p < input.length) {
    const len = zstdFrameLength(input.subarray(p));
    const part = z.zstdDecompressSync(input.subarray(p, p + len), { maxOutputLength: cs - got });
    if (part.length === 0 && len === 0) break;
    out.set(part, got);
    got += part.length;
    p += len;
  }
  return out.subarray(0, got);
}
