/**
 * The QCOW2 header codec: {@linkcode parseQcow2Header} and {@linkcode encodeQcow2Header}, the
 * feature-bit and extension constants, and the derived geometry helpers shared by the reader and
 * the writer. Pure and synchronous: all validation of a hostile header lives here.
 *
 * @module
 */
import { CorruptImageError, LimitExceededError, UnsupportedFeatureError } from "../errors.ts";
import { u32be } from "../_internal/bytes.ts";

/** The QCOW2 magic, "QFI\xfb", as a big-endian u32. */
export const QCOW2_MAGIC = 0x514649fb;
/** Size of a version 2 header (and of the common part of a version 3 header). */
export const QCOW2_V2_HEADER_LENGTH = 72;
/** Smallest valid version 3 `header_length`. */
export const QCOW2_V3_MIN_HEADER_LENGTH = 104;
/** Smallest `cluster_bits` the format allows (512-byte clusters). */
export const QCOW2_MIN_CLUSTER_BITS = 9;
/** Largest `cluster_bits` supported (2 MiB clusters, qemu's limit). */
export const QCOW2_MAX_CLUSTER_BITS = 21;
/** Largest active L1 table, in entries (32 MiB, qemu's QCOW_MAX_L1_SIZE). */
export const QCOW2_MAX_L1_ENTRIES = 4194304;
/** Largest refcount table, in bytes (qemu's QCOW_MAX_REFTABLE_SIZE). */
export const QCOW2_MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
/** Largest number of internal snapshots (qemu's QCOW_MAX_SNAPSHOTS). */
export const QCOW2_MAX_SNAPSHOTS = 65536;

/** Incompatible feature bit 0: refcounts may be stale. */
export const QCOW2_INCOMPAT_DIRTY = 1n << 0n;
/** Incompatible feature bit 1: the image is marked corrupt. */
export const QCOW2_INCOMPAT_CORRUPT = 1n << 1n;
/** Incompatible feature bit 2: guest data lives in an external data file. */
export const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
/** Incompatible feature bit 3: `compression_type` is not zlib. */
export const QCOW2_INCOMPAT_COMPRESSION = 1n << 3n;
/** Incompatible feature bit 4: extended L2 entries (subclusters). */
export const QCOW2_INCOMPAT_EXTL2 = 1n << 4n;
/** Every incompatible feature bit this module knows. */
export const QCOW2_INCOMPAT_KNOWN = 0x1fn;

/** Header extension type: end of the extension list. */
export const QCOW2_EXT_END = 0;
/** Header extension type: backing file format name. */
export const QCOW2_EXT_BACKING_FORMAT = 0xe2792aca;
/** Header extension type: feature name table. */
export const QCOW2_EXT_FEATURE_TABLE = 0x6803f857;
/** Header extension type: persistent bitmaps. */
export const QCOW2_EXT_BITMAPS = 0x23852875;
/** Header extension type: full-disk encryption header pointer. */
export const QCOW2_EXT_CRYPTO = 0x0537be77;
/** Header extension type: external data file name. */
export const QCOW2_EXT_DATA_FILE = 0x44415441;

/** One header extension, kept verbatim (unknown types are preserved, not interpreted). */
export interface Qcow2HeaderExtension {
  /** The extension type (`QCOW2_EXT_*`). */
  type: number;
  /** The payload, without the 8-byte type/length prefix and without padding. */
  data: Uint8Array;
}

/**
 * A parsed QCOW2 header (versions 2 and 3). Field names follow the on-disk names of qemu's
 * `docs/interop/qcow2.txt`; the byte offset of each field is in its doc comment.
 */
export interface Qcow2Header {
  /** 0x04 `version`: 2 or 3. */
  version: number;
  /** 0x08 `backing_file_offset`: 0 when there is no backing file. */
  backingFileOffset: number;
  /** 0x10 `backing_file_size`: length of the backing file name. */
  backingFileSize: number;
  /** 0x14 `cluster_bits`: log2 of the cluster size. */
  clusterBits: number;
  /** 0x18 `size`: the virtual disk size in bytes, as stored. */
  size: number;
  /** 0x20 `crypt_method`: 0 none, 1 AES, 2 LUKS. */
  cryptMethod: number;
  /** 0x24 `l1_size`: entries in the active L1 table. */
  l1Size: number;
  /** 0x28 `l1_table_offset`. */
  l1TableOffset: number;
  /** 0x30 `refcount_table_offset`. */
  refcountTableOffset: number;
  /** 0x38 `refcount_table_clusters`. */
  refcountTableClusters: number;
  /** 0x3c `nb_snapshots`. */
  nbSnapshots: number;
  /** 0x40 `snapshots_offset`. */
  snapshotsOffset: number;
  /** 0x48 `incompatible_features` (v3; 0 for v2). */
  incompatibleFeatures: bigint;
  /** 0x50 `compatible_features` (v3; 0 for v2). */
  compatibleFeatures: bigint;
  /** 0x58 `autoclear_features` (v3; 0 for v2). */
  autoclearFeatures: bigint;
  /** 0x60 `refcount_order`: refcount width is `1 << refcountOrder` bits (4 for v2). */
  refcountOrder: number;
  /** 0x64 `header_length` (72 for v2). */
  headerLength: number;
  /** 0x68 `compression_type`: 0 zlib, 1 zstd (0 when absent). */
  compressionType: number;
  /** Header bytes after `compression_type` up to `header_length` (padding), kept verbatim. */
  extraHeader: Uint8Array;
  /** Header extensions in file order, without the end marker. */
  extensions: Qcow2HeaderExtension[];
  /** The backing file name, when `backingFileOffset` is set and the bytes hold it. */
  backingFileName?: string;
}

/** Cluster size in bytes of a header. */
export function qcow2ClusterSize(h: Pick<Qcow2Header, "clusterBits">): number {
  return 2 ** h.clusterBits;
}

/** True when the header uses extended (128-bit, subcluster) L2 entries. */
export function qcow2HasExtendedL2(h: Pick<Qcow2Header, "incompatibleFeatures">): boolean {
  return (h.incompatibleFeatures & QCOW2_INCOMPAT_EXTL2) !== 0n;
}

/** log2 of the number of L2 entries per table. */
export function qcow2L2Bits(h: Pick<Qcow2Header, "clusterBits" | "incompatibleFeatures">): number {
  return h.clusterBits - (qcow2HasExtendedL2(h) ? 4 : 3);
}

/** Number of L1 entries needed to map `size` bytes (qemu's `size_to_l1`). */
export function qcow2RequiredL1Size(size: number, clusterBits: number, l2Bits: number): number {
  const span = 2 ** (clusterBits + l2Bits);
  return Math.ceil(size / span);
}

function fail(field: string, offset: number, message: string, expected?: string, actual?: string) {
  return new CorruptImageError(
    `Cannot read QCOW2 header: ${message} (byte 0x${offset.toString(16)})`,
    { format: "qcow2", structure: "header", field, offset, expected, actual },
  );
}

/** Reads a big-endian u64 as a safe number, throwing a named error past 2^53. */
function be64(b: Uint8Array, off: number, field: string): number {
  const hi = u32be(b, off, field), lo = u32be(b, off + 4, field);
  if (hi > 0x1fffff) {
    throw new LimitExceededError(
      `Cannot read QCOW2 header: ${field} 0x${hi.toString(16)}${
        lo.toString(16).padStart(8, "0")
      } exceeds 2^53 (byte 0x${off.toString(16)})`,
    );
  }
  return hi * 0x100000000 + lo;
}

function be64n(b: Uint8Array, off: number): bigint {
  return (BigInt(u32be(b, off)) << 32n) | BigInt(u32be(b, off + 4));
}

function aligned(v: number, cs: number): boolean {
  return v % cs === 0;
}

/**
 * Parses and validates a QCOW2 header from the first bytes of an image (ideally the whole of
 * cluster 0, so the header extensions and the backing file name can be read; bytes missing at
 * the end read as an end marker, as qemu reads zeros past EOF).
 *
 * Checks, as qemu 7.2 does or tighter: magic, version 2 or 3, `cluster_bits` 9..21,
 * `header_length`, `refcount_order` ≤ 6, `crypt_method` ≤ 2, alignment of the L1, refcount and
 * snapshot tables, the L1 size against the virtual size and the 32 MiB cap, the refcount table
 * against its 8 MiB cap, the snapshot count, the backing file name's place, the compression
 * type against its feature bit, extended L2 against the cluster size, and every header
 * extension's length against the extension area. Refusing features (encryption, backing files,
 * external data) is the reader's job, not the codec's.
 *
 * @throws {CorruptImageError} a field is invalid (message and `details` name field and offset)
 * @throws {UnsupportedFeatureError} version not 2/3, cluster size above 2 MiB, unknown
 *   compression type
 * @throws {LimitExceededError} a table larger than qemu's caps, a 64-bit field past 2^53
 *
 * @example
 * ```ts
 * import { encodeQcow2Header, parseQcow2Header } from "./header.ts";
 * const h = parseQcow2Header(encodeQcow2Header({
 *   version: 2, backingFileOffset: 0, backingFileSize: 0, clusterBits: 16, size: 1 << 20,
 *   cryptMethod: 0, l1Size: 1, l1TableOffset: 65536, refcountTableOffset: 131072,
 *   refcountTableClusters: 1, nbSnapshots: 0, snapshotsOffset: 0, incompatibleFeatures: 0n,
 *   compatibleFeatures: 0n, autoclearFeatures: 0n, refcountOrder: 4, headerLength: 72,
 *   compressionType: 0, extraHeader: new Uint8Array(0), extensions: [],
 * }));
 * console.assert(h.size === 1 << 20 && h.clusterBits === 16);
 * ```
 */
export function parseQcow2Header(bytes: Uint8Array): Qcow2Header {
  if (bytes.length < QCOW2_V2_HEADER_LENGTH) {
    throw fail(
      "magic",
      0,
      `need at least ${QCOW2_V2_HEADER_LENGTH} bytes, found ${bytes.length}`,
    );
  }
  const magic = u32be(bytes, 0);
  if (magic !== QCOW2_MAGIC) {
    throw fail("magic", 0, `magic must be 0x514649fb, found 0x${magic.toString(16)}`);
  }
  const version = u32be(bytes, 4);
  if (version !== 2 && version !== 3) {
    throw new UnsupportedFeatureError(
      "qcow2",
      `version ${version}`,
      `Cannot read QCOW2 header: version must be 2 or 3, found ${version} (byte 0x4)`,
      `Unsupported qcow2 version ${version}`,
    );
  }
  const clusterBits = u32be(bytes, 20); // cluster_bits
  if (clusterBits < QCOW2_MIN_CLUSTER_BITS || clusterBits > 31) {
    throw fail("cluster_bits", 0x14, `cluster_bits must be 9 to 21, found ${clusterBits}`);
  }
  if (clusterBits > QCOW2_MAX_CLUSTER_BITS) {
    throw new UnsupportedFeatureError(
      "qcow2",
      `cluster size 2^${clusterBits}`,
      `Cannot read QCOW2 header: cluster_bits must be 9 to 21, found ${clusterBits} (byte 0x14)`,
      `Unsupported cluster size: 2^${clusterBits}`,
    );
  }
  const cs = 2 ** clusterBits;
  const backingFileOffset = be64(bytes, 8, "backing_file_offset");
  const backingFileSize = u32be(bytes, 16); // backing_file_size
  const size = be64(bytes, 24, "size");
  const cryptMethod = u32be(bytes, 32); // crypt_method
  const l1Size = u32be(bytes, 36); // l1_size
  const l1TableOffset = be64(bytes, 40, "l1_table_offset");
  const refcountTableOffset = be64(bytes, 48, "refcount_table_offset");
  const refcountTableClusters = u32be(bytes, 56); // refcount_table_clusters
  const nbSnapshots = u32be(bytes, 60); // nb_snapshots
  const snapshotsOffset = be64(bytes, 64, "snapshots_offset");

  let incompatibleFeatures = 0n, compatibleFeatures = 0n, autoclearFeatures = 0n;
  let refcountOrder = 4, headerLength = QCOW2_V2_HEADER_LENGTH, compressionType = 0;
  let extraHeader = new Uint8Array(0);
  if (version === 3) {
    if (bytes.length < QCOW2_V3_MIN_HEADER_LENGTH) {
      throw fail(
        "header_length",
        0x64,
        `a version 3 header needs ${QCOW2_V3_MIN_HEADER_LENGTH} bytes, found ${bytes.length}`,
      );
    }
    incompatibleFeatures = be64n(bytes, 72); // incompatible_features
    compatibleFeatures = be64n(bytes, 80); // compatible_features
    autoclearFeatures = be64n(bytes, 88); // autoclear_features
    refcountOrder = u32be(bytes, 96); // refcount_order
    headerLength = u32be(bytes, 100); // header_length
    if (headerLength < QCOW2_V3_MIN_HEADER_LENGTH) {
      throw fail(
        "header_length",
        0x64,
        `header_length must be at least 104, found ${headerLength}`,
      );
    }
    if (headerLength > cs) {
      throw fail(
        "header_length",
        0x64,
        `header_length must be at most the cluster size ${cs}, found ${headerLength}`,
      );
    }
    if (headerLength > bytes.length) {
      throw fail(
        "header_length",
        0x64,
        `header_length ${headerLength} passes the end of the data (${bytes.length} bytes)`,
      );
    }
    if (headerLength > 104) {
      compressionType = bytes[104]!; // compression_type
      extraHeader = bytes.slice(105, headerLength);
    }
    if (refcountOrder > 6) {
      throw fail("refcount_order", 0x60, `refcount_order must be 0 to 6, found ${refcountOrder}`);
    }
  }
  if (cryptMethod > 2) {
    throw fail("crypt_method", 0x20, `crypt_method must be 0, 1 or 2, found ${cryptMethod}`);
  }

  // L1 table (active).
  if (l1Size > QCOW2_MAX_L1_ENTRIES) {
    throw new LimitExceededError(
      `Cannot read QCOW2 header: l1_size ${l1Size} exceeds the cap of ${QCOW2_MAX_L1_ENTRIES} entries (byte 0x24)`,
    );
  }
  if (!aligned(l1TableOffset, cs)) {
    throw fail(
      "l1_table_offset",
      0x28,
      `l1_table_offset must be a multiple of the cluster size ${cs}, found 0x${
        l1TableOffset.toString(16)
      }`,
    );
  }
  const extL2 = (incompatibleFeatures & QCOW2_INCOMPAT_EXTL2) !== 0n;
  if (extL2 && clusterBits < 14) {
    throw fail(
      "incompatible_features",
      0x48,
      `extended L2 entries need clusters of at least 16 KiB, found ${cs} bytes`,
    );
  }
  const l2Bits = clusterBits - (extL2 ? 4 : 3);
  const required = qcow2RequiredL1Size(size, clusterBits, l2Bits);
  if (l1Size < required) {
    throw fail(
      "l1_size",
      0x24,
      `l1_size must be at least ${required} for a ${size}-byte disk, found ${l1Size}`,
      `>= ${required}`,
      String(l1Size),
    );
  }

  // Refcount table.
  if (refcountTableClusters === 0) {
    throw fail(
      "refcount_table_clusters",
      0x38,
      "refcount_table_clusters must be at least 1, found 0",
    );
  }
  if (refcountTableClusters > QCOW2_MAX_REFTABLE_BYTES / cs) {
    throw new LimitExceededError(
      `Cannot read QCOW2 header: refcount_table_clusters ${refcountTableClusters} exceeds the cap of ${
        QCOW2_MAX_REFTABLE_BYTES / cs
      } (8 MiB) (byte 0x38)`,
    );
  }
  if (!aligned(refcountTableOffset, cs)) {
    throw fail(
      "refcount_table_offset",
      0x30,
      `refcount_table_offset must be a multiple of the cluster size ${cs}, found 0x${
        refcountTableOffset.toString(16)
      }`,
    );
  }

  // Snapshot table.
  if (nbSnapshots > QCOW2_MAX_SNAPSHOTS) {
    throw new LimitExceededError(
      `Cannot read QCOW2 header: nb_snapshots ${nbSnapshots} exceeds the cap of ${QCOW2_MAX_SNAPSHOTS} (byte 0x3c)`,
    );
  }
  if (!aligned(snapshotsOffset, cs)) {
    throw fail(
      "snapshots_offset",
      0x40,
      `snapshots_offset must be a multiple of the cluster size ${cs}, found 0x${
        snapshotsOffset.toString(16)
      }`,
    );
  }

  // Compression type.
  if (compressionType > 1) {
    throw new UnsupportedFeatureError(
      "qcow2",
      `compression type ${compressionType}`,
      `Cannot read QCOW2 header: compression_type must be 0 (zlib) or 1 (zstd), found ${compressionType} (byte 0x68)`,
    );
  }
  const compressionBit = (incompatibleFeatures & QCOW2_INCOMPAT_COMPRESSION) !== 0n;
  if (compressionBit !== (compressionType !== 0)) {
    throw fail(
      "incompatible_features",
      0x48,
      compressionType === 0
        ? "the compression type feature bit is set but compression_type is 0 (zlib)"
        : `compression_type is ${compressionType} but its feature bit is not set`,
    );
  }

  // Backing file name.
  let backingFileName: string | undefined;
  if (backingFileOffset !== 0) {
    if (backingFileOffset > cs) {
      throw fail(
        "backing_file_offset",
        0x08,
        `backing_file_offset must lie in cluster 0 (at most ${cs}), found 0x${
          backingFileOffset.toString(16)
        }`,
      );
    }
    if (backingFileSize > 1023 || backingFileSize > cs - backingFileOffset) {
      throw fail(
        "backing_file_size",
        0x10,
        `backing_file_size must be at most ${
          Math.min(1023, cs - backingFileOffset)
        }, found ${backingFileSize}`,
      );
    }
    if (backingFileOffset + backingFileSize <= bytes.length) {
      backingFileName = new TextDecoder().decode(
        bytes.subarray(backingFileOffset, backingFileOffset + backingFileSize),
      );
    }
  }

  // Header extensions, from header_length to ext_end.
  const extEnd = backingFileOffset !== 0 ? backingFileOffset : cs;
  const extensions: Qcow2HeaderExtension[] = [];
  let p = headerLength;
  while (p + 8 <= extEnd && p + 8 <= bytes.length) {
    const type = u32be(bytes, p);
    if (type === QCOW2_EXT_END) break;
    const len = u32be(bytes, p + 4);
    if (len > extEnd - (p + 8)) {
      throw new CorruptImageError(
        `Cannot read QCOW2 header: extension 0x${
          type.toString(16)
        } of ${len} bytes passes the end of the extension area at 0x${
          extEnd.toString(16)
        } (byte 0x${(p + 4).toString(16)})`,
        { format: "qcow2", structure: "header extension", field: "length", offset: p + 4 },
      );
    }
    if (p + 8 + len > bytes.length) {
      throw new CorruptImageError(
        `Cannot read QCOW2 header: extension 0x${
          type.toString(16)
        } of ${len} bytes passes the end of the image (byte 0x${(p + 4).toString(16)})`,
        { format: "qcow2", structure: "header extension", field: "length", offset: p + 4 },
      );
    }
    extensions.push({ type, data: bytes.slice(p + 8, p + 8 + len) });
    p += 8 + Math.ceil(len / 8) * 8;
  }

  const h: Qcow2Header = {
    version,
    backingFileOffset,
    backingFileSize,
    clusterBits,
    size,
    cryptMethod,
    l1Size,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters,
    nbSnapshots,
    snapshotsOffset,
    incompatibleFeatures,
    compatibleFeatures,
    autoclearFeatures,
    refcountOrder,
    headerLength,
    compressionType,
    extraHeader,
    extensions,
  };
  if (backingFileName !== undefined) h.backingFileName = backingFileName;
  return h;
}

function put32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(off, v >>> 0, false);
}

function put64(b: Uint8Array, off: number, v: number | bigint): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(off, BigInt(v), false);
}

/**
 * Encodes a header, its extensions (each padded to 8 bytes), an end marker when there is room
 * before the extension area's end, and the backing file name at `backingFileOffset` when one
 * is given. Version 2 headers are 72 bytes; version 3 headers are `headerLength` bytes, with
 * `compressionType` at 0x68 and `extraHeader` after it. The result is the start of cluster 0;
 * the rest of the cluster is zero. Throws a `RangeError` for values that do not fit the format.
 *
 * @example
 * ```ts
 * import { encodeQcow2Header } from "./header.ts";
 * const b = encodeQcow2Header({
 *   version: 3, backingFileOffset: 0, backingFileSize: 0, clusterBits: 16, size: 0,
 *   cryptMethod: 0, l1Size: 0, l1TableOffset: 0, refcountTableOffset: 65536,
 *   refcountTableClusters: 1, nbSnapshots: 0, snapshotsOffset: 0, incompatibleFeatures: 0n,
 *   compatibleFeatures: 0n, autoclearFeatures: 0n, refcountOrder: 4, headerLength: 112,
 *   compressionType: 0, extraHeader: new Uint8Array(7), extensions: [],
 * });
 * console.assert(b.length === 120 && b[3] === 0xfb);
 * ```
 */
export function encodeQcow2Header(h: Qcow2Header): Uint8Array {
  if (h.version !== 2 && h.version !== 3) throw new RangeError(`Invalid version ${h.version}`);
  const hl = h.version === 2 ? QCOW2_V2_HEADER_LENGTH : h.headerLength;
  if (h.version === 3 && hl < QCOW2_V3_MIN_HEADER_LENGTH) {
    throw new RangeError(`Invalid header_length ${hl}`);
  }
  if (h.version === 3 && hl > 104 && 105 + h.extraHeader.length !== hl) {
    throw new RangeError(
      `extraHeader must be ${
        hl - 105
      } bytes for header_length ${hl}, found ${h.extraHeader.length}`,
    );
  }
  let extBytes = 0;
  for (const e of h.extensions) extBytes += 8 + Math.ceil(e.data.length / 8) * 8;
  const cs = 2 ** h.clusterBits;
  const extEnd = h.backingFileOffset !== 0 ? h.backingFileOffset : cs;
  const endMarker = hl + extBytes + 8 <= extEnd ? 8 : 0;
  let total = hl + extBytes + endMarker;
  const name = h.backingFileOffset !== 0 && h.backingFileName !== undefined
    ? new TextEncoder().encode(h.backingFileName)
    : undefined;
  if (name) total = Math.max(total, h.backingFileOffset + name.length);
  const b = new Uint8Array(total);
  put32(b, 0, QCOW2_MAGIC); // magic
  put32(b, 4, h.version); // version
  put64(b, 8, h.backingFileOffset); // backing_file_offset
  put32(b, 16, h.backingFileSize); // backing_file_size
  put32(b, 20, h.clusterBits); // cluster_bits
  put64(b, 24, h.size); // size
  put32(b, 32, h.cryptMethod); // crypt_method
  put32(b, 36, h.l1Size); // l1_size
  put64(b, 40, h.l1TableOffset); // l1_table_offset
  put64(b, 48, h.refcountTableOffset); // refcount_table_offset
  put32(b, 56, h.refcountTableClusters); // refcount_table_clusters
  put32(b, 60, h.nbSnapshots); // nb_snapshots
  put64(b, 64, h.snapshotsOffset); // snapshots_offset
  if (h.version === 3) {
    put64(b, 72, h.incompatibleFeatures); // incompatible_features
    put64(b, 80, h.compatibleFeatures); // compatible_features
    put64(b, 88, h.autoclearFeatures); // autoclear_features
    put32(b, 96, h.refcountOrder); // refcount_order
    put32(b, 100, hl); // header_length
    if (hl > 104) {
      b[104] = h.compressionType; // compression_type
      b.set(h.extraHeader, 105);
    }
  }
  let p = hl;
  for (const e of h.extensions) {
    put32(b, p, e.type);
    put32(b, p + 4, e.data.length);
    b.set(e.data, p + 8);
    p += 8 + Math.ceil(e.data.length / 8) * 8;
  }
  if (name) b.set(name, h.backingFileOffset);
  return b;
}
