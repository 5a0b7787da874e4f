/**
 * The header of an ntfsclone "special image": a 16-byte magic, the image format version, the
 * volume geometry and the offset of the command stream. Pure codec: {@linkcode parseNtfscloneHeader}
 * validates hostile bytes, {@linkcode encodeNtfscloneHeader} writes exactly what ntfsclone writes.
 *
 * Layout (little-endian, packed):
 *
 * | byte | size | field                |
 * |------|------|----------------------|
 * | 0x00 | 16   | magic `\0ntfsclone-image` |
 * | 0x10 | 1    | major_ver (10)       |
 * | 0x11 | 1    | minor_ver (1; 0 = no backup-boot record) |
 * | 0x12 | 4    | cluster_size         |
 * | 0x16 | 8    | device_size          |
 * | 0x1e | 8    | nr_clusters (signed) |
 * | 0x26 | 8    | inuse                |
 * | 0x2e | 4    | offset_to_image_data (version 10 only; 56) |
 * | 0x32 | 6    | padding (zero)       |
 *
 * Images older than version 10 (the major byte held the NTFS version, e.g. 3.1) stop after
 * `inuse`: their command stream starts at byte 46.
 *
 * @module
 */
import { CorruptImageError, UnsupportedFeatureError } from "../errors.ts";
import { hex, isPowerOfTwo, put32, put64, u32, u64n, u8 } from "../_internal/bytes.ts";

/** The 16 magic bytes that open every ntfsclone image: a NUL, then `ntfsclone-image`. */
export const NTFSCLONE_MAGIC: Uint8Array = new Uint8Array([
  0x00,
  ...new TextEncoder().encode("ntfsclone-image"),
]);

/** Size of the header fields of a version-10 image (before `offset_to_image_data` padding). */
export const NTFSCLONE_HEADER_FIELDS_SIZE = 50;

/** Size of the header of images older than version 10 (no `offset_to_image_data`). */
export const NTFSCLONE_LEGACY_HEADER_SIZE = 46;

/** Offset of the command stream in images written by ntfsclone 10.x: (50 + 7) & ~7. */
export const NTFSCLONE_DEFAULT_DATA_OFFSET = 56;

/** Largest `offset_to_image_data` accepted (a header extension larger than this is refused). */
export const NTFSCLONE_MAX_DATA_OFFSET = 65536;

/** Smallest and largest cluster sizes of NTFS (256-byte sectors x 1, 2 MiB). */
export const NTFSCLONE_MIN_CLUSTER_SIZE = 256;
/** Largest NTFS cluster size (NTFS_MAX_CLUSTER_SIZE). */
export const NTFSCLONE_MAX_CLUSTER_SIZE = 2 * 1024 * 1024;

/** The decoded header of an ntfsclone special image. */
export interface NtfscloneHeader {
  /** major_ver (byte 0x10): 10 for current images; below 10 means a legacy 46-byte header. */
  majorVersion: number;
  /** minor_ver (byte 0x11): 1 (with backup-boot record) or 0. */
  minorVersion: number;
  /** cluster_size (byte 0x12): bytes per cluster, a power of two from 256 to 2 MiB. */
  clusterSize: number;
  /** device_size (byte 0x16): size of the source device in bytes (≥ nrClusters * clusterSize). */
  deviceSize: number;
  /** nr_clusters (byte 0x1e): clusters in the NTFS volume (the backup boot is cluster nrClusters). */
  nrClusters: number;
  /** inuse (byte 0x26): clusters in use as counted by the saver (informative only). */
  inuse: number;
  /**
   * offset_to_image_data (byte 0x2e): where the command stream starts; 56 for images written by
   * ntfsclone 10.x, 46 for legacy images (which have no such field). Values below 50 are kept as
   * read (the command stream then starts at byte 50, as ntfsclone does).
   */
  offsetToImageData: number;
  /**
   * The bytes between the fields and `offsetToImageData` when any of them is non-zero (a future
   * header extension); absent when they are all zero, as ntfsclone writes them.
   */
  extension?: Uint8Array;
}

/** Byte offset in the image where the command stream of `header` starts. */
export function imageDataOffset(header: NtfscloneHeader): number {
  if (header.majorVersion < 10) return NTFSCLONE_LEGACY_HEADER_SIZE;
  return Math.max(NTFSCLONE_HEADER_FIELDS_SIZE, header.offsetToImageData);
}

/**
 * Payload length of the NEXT record of cluster `lcn`: a whole cluster, except for the cluster
 * that reaches the end of the device, which is cut at `deviceSize` (in practice only the
 * backup-boot cluster `nrClusters`; its payload can be 0 bytes).
 */
export function clusterPayloadSize(header: NtfscloneHeader, lcn: number): number {
  const cs = header.clusterSize;
  return (lcn + 1) * cs >= header.deviceSize ? header.deviceSize - lcn * cs : cs;
}

/**
 * Bytes a restore needs on its destination: `nrClusters * clusterSize` plus the backup-boot
 * cluster's payload (so `min(deviceSize, (nrClusters + 1) * clusterSize)`).
 */
export function restoredSize(header: NtfscloneHeader): number {
  return header.nrClusters * header.clusterSize + clusterPayloadSize(header, header.nrClusters);
}

function corrupt(
  field: string,
  offset: number,
  expected: string,
  actual: string,
  compat?: string,
): CorruptImageError {
  return new CorruptImageError(
    `Cannot read ntfsclone image header: ${field} must be ${expected}, found ${actual} (byte ${
      hex(offset)
    })`,
    {
      format: "ntfsclone",
      structure: "image header",
      field,
      offset,
      expected,
      actual,
      ...(compat === undefined ? {} : { compat }),
    },
  );
}

function checkedU64(b: Uint8Array, off: number, field: string, max: number): number {
  const v = u64n(b, off, field);
  if (v > BigInt(max)) {
    const signed = BigInt.asIntN(64, v);
    throw corrupt(field, off, `at most ${max}`, signed < 0n ? signed.toString() : v.toString());
  }
  return Number(v);
}

/** How many bytes {@linkcode parseNtfscloneHeader} needs to see: 18 tells the version, then 46 or 50. */
export function ntfscloneHeaderFieldsSize(bytes: Uint8Array): number {
  if (bytes.length < 18) return 18;
  return bytes[16]! < 10 ? NTFSCLONE_LEGACY_HEADER_SIZE : NTFSCLONE_HEADER_FIELDS_SIZE;
}

/**
 * Checks the magic over the first `min(16, bytes.length)` bytes; throws
 * {@linkcode CorruptImageError} at the first wrong byte.
 *
 * @example
 * ```ts
 * import { checkNtfscloneMagic, NTFSCLONE_MAGIC } from "./header.ts";
 * checkNtfscloneMagic(NTFSCLONE_MAGIC.subarray(0, 4));
 * ```
 */
export function checkNtfscloneMagic(bytes: Uint8Array): void {
  for (let i = 0; i < Math.min(bytes.length, NTFSCLONE_MAGIC.length); i++) {
    if (bytes[i] !== NTFSCLONE_MAGIC[i]) {
      throw corrupt(
        "magic",
        i,
        '"\\0ntfsclone-image"',
        `byte 0x${bytes[i]!.toString(16).padStart(2, "0")}`,
        "Input file is not an image! (invalid magic)",
      );
    }
  }
}

/**
 * Parses and validates the header at the start of `bytes`. `bytes` must hold at least the 50
 * field bytes (46 for a legacy image); bytes up to `offsetToImageData`, when present, are kept as
 * {@linkcode NtfscloneHeader.extension} if they are not all zero.
 *
 * Throws {@linkcode CorruptImageError} (with the field's byte offset; `details.compat` carries
 * ntfsclone's own wording where it has one) and {@linkcode UnsupportedFeatureError} for a format
 * version above 10.
 *
 * @example
 * ```ts
 * import { encodeNtfscloneHeader, parseNtfscloneHeader } from "./header.ts";
 * const bytes = encodeNtfscloneHeader({
 *   majorVersion: 10, minorVersion: 1, clusterSize: 4096, deviceSize: 16 << 20,
 *   nrClusters: 4095, inuse: 711, offsetToImageData: 56,
 * });
 * console.assert(parseNtfscloneHeader(bytes).nrClusters === 4095);
 * ```
 */
export function parseNtfscloneHeader(bytes: Uint8Array): NtfscloneHeader {
  checkNtfscloneMagic(bytes);
  const need = ntfscloneHeaderFieldsSize(bytes);
  if (bytes.length < need) {
    throw new CorruptImageError(
      `Cannot read ntfsclone image header: the image ends at byte ${
        hex(bytes.length)
      }, inside the ${need}-byte header`,
      {
        format: "ntfsclone",
        structure: "image header",
        offset: bytes.length,
        expected: `${need} bytes`,
        actual: `${bytes.length} bytes`,
        compat: "Short image file...",
      },
    );
  }
  const majorVersion = u8(bytes, 0x10, "major_ver");
  const minorVersion = u8(bytes, 0x11, "minor_ver");
  if (majorVersion > 10) {
    throw new UnsupportedFeatureError(
      "ntfsclone",
      `image format version ${majorVersion}.${minorVersion}`,
      `Cannot read ntfsclone image: format version ${majorVersion}.${minorVersion} is newer than 10.x (byte 0x10)`,
      `Do not know how to handle image format version ${majorVersion}.${minorVersion}.  Please obtain a newer version of ntfsclone.`,
    );
  }
  const clusterSize = u32(bytes, 0x12, "cluster_size");
  if (
    !isPowerOfTwo(clusterSize) || clusterSize < NTFSCLONE_MIN_CLUSTER_SIZE ||
    clusterSize > NTFSCLONE_MAX_CLUSTER_SIZE
  ) {
    throw corrupt(
      "cluster_size",
      0x12,
      `a power of two from ${NTFSCLONE_MIN_CLUSTER_SIZE} to ${NTFSCLONE_MAX_CLUSTER_SIZE}`,
      String(clusterSize),
    );
  }
  const deviceSize = checkedU64(bytes, 0x16, "device_size", Number.MAX_SAFE_INTEGER);
  const maxClusters = Math.floor(Number.MAX_SAFE_INTEGER / clusterSize) - 1;
  const nrClusters = checkedU64(bytes, 0x1e, "nr_clusters", maxClusters);
  if (nrClusters * clusterSize > deviceSize) {
    throw corrupt(
      "device_size",
      0x16,
      `at least nr_clusters * cluster_size = ${nrClusters * clusterSize}`,
      String(deviceSize),
    );
  }
  const inuse = checkedU64(bytes, 0x26, "inuse", Number.MAX_SAFE_INTEGER);
  let offsetToImageData = NTFSCLONE_LEGACY_HEADER_SIZE;
  const header: NtfscloneHeader = {
    majorVersion,
    minorVersion,
    clusterSize,
    deviceSize,
    nrClusters,
    inuse,
    offsetToImageData,
  };
  if (majorVersion < 10) return header;
  offsetToImageData = u32(bytes, 0x2e, "offset_to_image_data");
  if (offsetToImageData > NTFSCLONE_MAX_DATA_OFFSET) {
    throw corrupt(
      "offset_to_image_data",
      0x2e,
      `at most ${NTFSCLONE_MAX_DATA_OFFSET}`,
      String(offsetToImageData),
    );
  }
  header.offsetToImageData = offsetToImageData;
  const ext = bytes.subarray(
    NTFSCLONE_HEADER_FIELDS_SIZE,
    Math.max(NTFSCLONE_HEADER_FIELDS_SIZE, Math.min(offsetToImageData, bytes.length)),
  );
  if (ext.some((b) => b !== 0)) header.extension = ext.slice();
  return header;
}

/**
 * Encodes `header` as ntfsclone writes it: the 50 field bytes, then zero padding (or
 * {@linkcode NtfscloneHeader.extension}) up to `offsetToImageData`. A legacy header
 * (`majorVersion` below 10) is the 46 field bytes only. Throws `RangeError` for values the
 * format cannot hold or that {@linkcode parseNtfscloneHeader} would reject.
 *
 * @example
 * ```ts
 * import { encodeNtfscloneHeader } from "./header.ts";
 * const b = encodeNtfscloneHeader({
 *   majorVersion: 10, minorVersion: 1, clusterSize: 4096, deviceSize: 8192 * 4096,
 *   nrClusters: 8191, inuse: 100, offsetToImageData: 56,
 * });
 * console.assert(b.length === 56 && b[16] === 10 && b[0x2e] === 56);
 * ```
 */
export function encodeNtfscloneHeader(header: NtfscloneHeader): Uint8Array {
  const h = header;
  const byte = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`Invalid ${what} ${v}`);
  };
  byte(h.majorVersion, "majorVersion");
  byte(h.minorVersion, "minorVersion");
  if (h.majorVersion > 10) throw new RangeError(`Cannot encode image version ${h.majorVersion}`);
  if (
    !isPowerOfTwo(h.clusterSize) || h.clusterSize < NTFSCLONE_MIN_CLUSTER_SIZE ||
    h.clusterSize > NTFSCLONE_MAX_CLUSTER_SIZE
  ) {
    throw new RangeError(`Invalid clusterSize ${h.clusterSize}`);
  }
  for (
    const [k, v] of [["deviceSize", h.deviceSize], ["nrClusters", h.nrClusters], [
      "inuse",
      h.inuse,
    ]] as const
  ) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`Invalid ${k} ${v}`);
  }
  if (
    !Number.isSafeInteger((h.nrClusters + 1) * h.clusterSize) ||
    h.nrClusters * h.clusterSize > h.deviceSize
  ) {
    throw new RangeError(
      `nrClusters ${h.nrClusters} x clusterSize ${h.clusterSize} does not fit deviceSize ${h.deviceSize}`,
    );
  }
  const legacy = h.majorVersion < 10;
  const size = legacy
    ? NTFSCLONE_LEGACY_HEADER_SIZE
    : Math.max(NTFSCLONE_HEADER_FIELDS_SIZE, h.offsetToImageData);
  if (legacy && h.offsetToImageData !== NTFSCLONE_LEGACY_HEADER_SIZE) {
    throw new RangeError(`A legacy header has offsetToImageData 46, not ${h.offsetToImageData}`);
  }
  if (
    !legacy && (!Number.isInteger(h.offsetToImageData) || h.offsetToImageData < 0 ||
      h.offsetToImageData > NTFSCLONE_MAX_DATA_OFFSET)
  ) {
    throw new RangeError(`Invalid offsetToImageData ${h.offsetToImageData}`);
  }
  const b = new Uint8Array(size);
  b.set(NTFSCLONE_MAGIC, 0);
  b[0x10] = h.majorVersion; // major_ver
  b[0x11] = h.minorVersion; // minor_ver
  put32(b, 0x12, h.clusterSize); // cluster_size
  put64(b, 0x16, h.deviceSize); // device_size
  put64(b, 0x1e, h.nrClusters); // nr_clusters
  put64(b, 0x26, h.inuse); // inuse
  if (!legacy) {
    put32(b, 0x2e, h.offsetToImageData); // offset_to_image_data
    if (h.extension) {
      if (h.extension.length > size - NTFSCLONE_HEADER_FIELDS_SIZE) {
        throw new RangeError(`Header extension does not fit before offsetToImageData`);
      }
      b.set(h.extension, NTFSCLONE_HEADER_FIELDS_SIZE);
    }
  }
  return b;
}

/**
 * Builds the header ntfsclone 10.1 writes for a volume (`inuse` is the number of used clusters
 * without the backup-boot cluster).
 *
 * @example
 * ```ts
 * import { createNtfscloneHeader } from "./header.ts";
 * const h = createNtfscloneHeader({ clusterSize: 4096, deviceSize: 16 << 20, nrClusters: 4095, inuse: 711 });
 * console.assert(h.majorVersion === 10 && h.minorVersion === 1 && h.offsetToImageData === 56);
 * ```
 */
export function createNtfscloneHeader(
  volume: { clusterSize: number; deviceSize: number; nrClusters: number; inuse: number },
): NtfscloneHeader {
  return {
    majorVersion: 10,
    minorVersion: 1,
    clusterSize: volume.clusterSize,
    deviceSize: volume.deviceSize,
    nrClusters: volume.nrClusters,
    inuse: volume.inuse,
    offsetToImageData: NTFSCLONE_DEFAULT_DATA_OFFSET,
  };
}
