/**
 * The NTFS boot sector ($Boot, sector 0, with a backup at sector `number_of_sectors`): the
 * geometry every other NTFS structure hangs from.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { u16, u32, u64n, u8 } from "../_internal/bytes.ts";

/** Largest cluster size NTFS (and ntfsclone) accepts: 2 MiB. */
export const NTFS_MAX_CLUSTER_SIZE = 2 * 1024 * 1024;

/** The fields of an NTFS boot sector that fsimage uses, validated. */
export interface NtfsBootSector {
  /** Bytes per sector: a power of two in 256..4096 (bpb.bytes_per_sector, 0x0B). */
  bytesPerSector: number;
  /** Sectors per cluster, decoded (bpb.sectors_per_cluster, 0x0D). */
  sectorsPerCluster: number;
  /** Cluster size in bytes: a power of two, at most 2 MiB. */
  clusterSize: number;
  /** Sectors in the volume, the backup boot sector excluded (number_of_sectors, 0x28). */
  numberOfSectors: number;
  /** Clusters in the volume: `numberOfSectors / sectorsPerCluster`, rounded down. */
  nrClusters: number;
  /** First cluster of $MFT (mft_lcn, 0x30). */
  mftLcn: number;
  /** First cluster of $MFTMirr (mftmirr_lcn, 0x38). */
  mftMirrLcn: number;
  /** Bytes per MFT record, from clusters_per_mft_record (0x40). */
  mftRecordSize: number;
  /** Bytes per index block, from clusters_per_index_record (0x44). */
  indexRecordSize: number;
  /** The 64-bit volume serial number (volume_serial_number, 0x48). */
  serialNumber: bigint;
}

/** Options of {@linkcode parseNtfsBootSector}. */
export interface ParseBootSectorOptions {
  /**
   * libntfs seeks to the last sector before going on: return false when the device refuses
   * a seek to byte `offset` (EINVAL), to fail as it does.
   */
  seekLastSector?: (offset: bigint) => boolean;
}

/** libntfs's hints after "Failed to read last sector". */
export const LAST_SECTOR_HINTS: string =
  "HINTS: Either the volume is a RAID/LDM but it wasn't setup yet,\n" +
  "   or it was not setup correctly (e.g. by not using mdadm --build ...),\n" +
  "   or a wrong device is tried to be mounted,\n" +
  "   or the partition table is corrupt (partition is smaller than NTFS),\n" +
  "   or the NTFS boot sector is corrupt (NTFS size is not valid).";

function fail(message: string, compat: string, offset: number, field: string): never {
  throw new CorruptImageError(
    `Cannot read NTFS boot sector: ${message} (byte 0x${offset.toString(16)})`,
    {
      format: "ntfs",
      structure: "boot sector",
      field,
      offset,
      compat,
    },
  );
}

function recordSize(v: number, clusterSize: number): number {
  // Values 0xE1..0xF7 are negative log2 of a byte count; 1..0x40 (powers of two) clusters.
  if (v >= 0xe1 && v <= 0xf7) return 2 ** (256 - v);
  return v * clusterSize;
}

/**
 * Parses and validates the 512-byte NTFS boot sector at the start of `b`, with the checks
 * libntfs makes before mounting (and their messages, kept in `details.compat`).
 *
 * @example
 * ```ts
 * import { parseNtfsBootSector } from "./boot.ts";
 * let err: unknown;
 * try { parseNtfsBootSector(new Uint8Array(512)); } catch (e) { err = e; }
 * console.assert(err instanceof Error && err.message.includes("OEM id"));
 * ```
 */
export function parseNtfsBootSector(
  b: Uint8Array,
  options: ParseBootSectorOptions = {},
): NtfsBootSector {
  if (b.length < 512) {
    fail(`need 512 bytes, found ${b.length}`, "NTFS signature is missing.", 0, "");
  }
  const oem = String.fromCharCode(...b.subarray(3, 11));
  if (oem !== "NTFS    ") {
    fail(
      `OEM id must be "NTFS    ", found ${JSON.stringify(oem)}`,
      "NTFS signature is missing.",
      3,
      "oem_id",
    );
  }
  const bps = u16(b, 0x0b);
  if (bps < 256 || bps > 4096) {
    fail(
      `bytes per sector must be 256..4096, found ${bps}`,
      `Unexpected bytes per sector value (${bps}).`,
      0x0b,
      "bytes_per_sector",
    );
  }
  const spcRaw = u8(b, 0x0d);
  const plain = [1, 2, 4, 8, 16, 32, 64, 128].includes(spcRaw);
  if (!plain && (spcRaw < 240 || spcRaw > 253)) {
    fail(
      `sectors per cluster code 0x${spcRaw.toString(16)} is invalid`,
      spcRaw > 128
        ? `Unexpected sectors per cluster value (code 0x${spcRaw.toString(16)})`
        : `Unexpected sectors per cluster value (${spcRaw}).`,
      0x0d,
      "sectors_per_cluster",
    );
  }
  const spc = spcRaw > 128 ? 2 ** (256 - spcRaw) : spcRaw;
  const cs = bps * spc;
  if (cs > NTFS_MAX_CLUSTER_SIZE) {
    fail(
      `cluster size ${cs} exceeds 2 MiB`,
      `Unexpected cluster size (${cs}).`,
      0x0d,
      "sectors_per_cluster",
    );
  }
  const reserved = [
    u16(b, 0x0e),
    u16(b, 0x11),
    u16(b, 0x13),
    u16(b, 0x16),
    u32(b, 0x20),
    u8(b, 0x10),
  ];
  if (reserved.some((v) => v !== 0)) {
    fail(
      "reserved BPB fields must be zero",
      `Reserved fields aren't zero (${reserved.join(", ")}).`,
      0x0e,
      "reserved_sectors",
    );
  }
  const validRec = (v: number) =>
    (v >= 0xe1 && v <= 0xf7) || [1, 2, 4, 8, 0x10, 0x20, 0x40].includes(v);
  const cpm = u8(b, 0x40), cpi = u8(b, 0x44);
  if (!validRec(cpm)) {
    fail(
      `clusters per MFT record code 0x${cpm.toString(16)} is invalid`,
      `Unexpected clusters per mft record (${cpm << 24 >> 24}).`,
      0x40,
      "clusters_per_mft_record",
    );
  }
  if (!validRec(cpi)) {
    fail(
      `clusters per index record code 0x${cpi.toString(16)} is invalid`,
      `Unexpected clusters per index record (${cpi << 24 >> 24}).`,
      0x44,
      "clusters_per_index_record",
    );
  }
  const mftN = u64n(b, 0x30), mirrN = u64n(b, 0x38), secN = u64n(b, 0x28);
  const signed = (v: bigint) => BigInt.asIntN(64, v);
  if (signed(mftN) <= 0n || signed(mirrN) <= 0n || mftN === mirrN) {
    fail(
      "$MFT and $MFTMirr locations must be positive and distinct",
      "Invalid location of MFT or MFTMirr.",
      0x30,
      "mft_lcn",
    );
  }
  if (secN === 0n) {
    fail("number of sectors is zero", "Volume size is set to zero.", 0x28, "number_of_sectors");
  }
  // libntfs seeks to the last sector ((sectors - 1) << ffs(bytes per sector) - 1, in 64 bits).
  const sectorBits = BigInt(31 - Math.clz32(bps & -bps));
  const last = BigInt.asIntN(64, (signed(secN) - 1n) << sectorBits);
  if (options.seekLastSector && (last < 0n || !options.seekLastSector(last))) {
    const n = signed(secN) - 1n;
    fail(
      `the last sector ${n} cannot be reached`,
      `Failed to read last sector (${n}): Invalid argument\n${LAST_SECTOR_HINTS}`,
      0x28,
      "number_of_sectors",
    );
  }
  const nrBig = signed(secN) >> BigInt(31 - Math.clz32(spc & -spc));
  if (signed(mftN) > nrBig || signed(mirrN) > nrBig) {
    fail(
      `$MFT LCN ${mftN} or $MFTMirr LCN ${mirrN} exceeds the ${nrBig} clusters`,
      `$MFT LCN (${signed(mftN)}) or $MFTMirr LCN (${
        signed(mirrN)
      }) is greater than the number of clusters (${nrBig}).`,
      0x30,
      "mft_lcn",
    );
  }
  if (signed(secN) < 0n || secN > BigInt(Number.MAX_SAFE_INTEGER) / BigInt(bps)) {
    fail(
      `number of sectors ${secN} is out of range`,
      "Volume size is out of range.",
      0x28,
      "number_of_sectors",
    );
  }
  const sectors = Number(secN);
  const nrClusters = Number(nrBig);
  if (!Number.isInteger(Math.log2(cs))) {
    fail(
      `cluster size ${cs} is not a power of two`,
      `cluster_size (${cs}) is not a power of 2.`,
      0x0b,
      "bytes_per_sector",
    );
  }
  const mftRecordSize = recordSize(cpm, cs);
  const indexRecordSize = recordSize(cpi, cs);
  if (mftRecordSize < 512 || mftRecordSize > 65536 || !Number.isInteger(Math.log2(mftRecordSize))) {
    fail(
      `MFT record size ${mftRecordSize} is unsupported`,
      `mft_record_size (${mftRecordSize}) is not a power of 2.`,
      0x40,
      "clusters_per_mft_record",
    );
  }
  if (indexRecordSize < 512 || indexRecordSize > NTFS_MAX_CLUSTER_SIZE) {
    fail(
      `index record size ${indexRecordSize} is unsupported`,
      `Unexpected clusters per index record (${cpi << 24 >> 24}).`,
      0x44,
      "clusters_per_index_record",
    );
  }
  return {
    bytesPerSector: bps,
    sectorsPerCluster: spc,
    clusterSize: cs,
    numberOfSectors: sectors,
    nrClusters,
    mftLcn: Number(mftN),
    mftMirrLcn: Number(mirrN),
    mftRecordSize,
    indexRecordSize,
    serialNumber: u64n(b, 0x48),
  };
}
