/**
 * ext block group descriptors: {@linkcode parseExtGroupDescriptor} decodes one 32- or 64-byte
 * descriptor, {@linkcode extGroupDescChecksum} computes its checksum (crc16 for `uninit_bg`,
 * crc32c for `metadata_csum`), as libext2fs's `ext2fs_group_desc_csum` does.
 *
 * @module
 */
import { u16, u32 } from "../_internal/bytes.ts";
import { crc16, crc32cUpdate } from "../_internal/crc.ts";

/** `bg_flags` bits. */
export const BG_FLAGS = {
  INODE_UNINIT: 0x1,
  BLOCK_UNINIT: 0x2,
  INODE_ZEROED: 0x4,
} as const;

/** One block group descriptor. 64-bit halves are combined when the descriptor is 64 bytes. */
export interface ExtGroupDescriptor {
  /** bg_block_bitmap (0x00 lo, 0x20 hi). */
  blockBitmap: number;
  /** bg_inode_bitmap (0x04 lo, 0x24 hi). */
  inodeBitmap: number;
  /** bg_inode_table (0x08 lo, 0x28 hi). */
  inodeTable: number;
  /** bg_free_blocks_count (0x0C lo, 0x2C hi). */
  freeBlocksCount: number;
  /** bg_free_inodes_count (0x0E lo, 0x2E hi). */
  freeInodesCount: number;
  /** bg_used_dirs_count (0x10 lo, 0x30 hi). */
  usedDirsCount: number;
  /** bg_flags (0x12) as held in memory (cleared by a backup-superblock open). */
  flags: number;
  /** bg_itable_unused (0x1C lo, 0x32 hi) as held in memory. */
  itableUnused: number;
  /** bg_checksum (0x1E) as stored. */
  checksum: number;
  /** True when the fs has no group checksums, or the stored checksum verifies. */
  checksumValid: boolean;
  /**
   * The exact locations, present only when one of them exceeds 2^53 (the number fields are
   * then rounded): a corrupt `_hi` half. Used to print libext2fs's warning digits exactly.
   */
  exact?: { blockBitmap: bigint; inodeBitmap: bigint; inodeTable: bigint };
}

/**
 * Decodes the descriptor at `offset` of `bytes`. `wide` is true when the fs has the 64bit
 * feature (the `_hi` halves at 0x20.. are used; `descSize` ≥ 64 is then guaranteed by the
 * superblock checks). `checksumValid` is filled in by the caller (see
 * {@linkcode extGroupDescChecksum}); it defaults to true here.
 *
 * @example
 * ```ts
 * import { parseExtGroupDescriptor } from "./group_desc.ts";
 * const d = new Uint8Array(32);
 * d[8] = 5; // bg_inode_table = 5
 * console.assert(parseExtGroupDescriptor(d, 0, false).inodeTable === 5);
 * ```
 */
export function parseExtGroupDescriptor(
  bytes: Uint8Array,
  offset: number,
  wide: boolean,
): ExtGroupDescriptor {
  const b = bytes, o = offset;
  const hi = (lo: number, hiOff: number) => (wide ? u32(b, o + hiOff) * 0x100000000 : 0) + lo;
  const hi16 = (lo: number, hiOff: number) => (wide ? u16(b, o + hiOff) * 0x10000 : 0) + lo;
  const d: ExtGroupDescriptor = {
    blockBitmap: hi(u32(b, o), 0x20),
    inodeBitmap: hi(u32(b, o + 4), 0x24),
    inodeTable: hi(u32(b, o + 8), 0x28),
    freeBlocksCount: hi16(u16(b, o + 0xc), 0x2c),
    freeInodesCount: hi16(u16(b, o + 0xe), 0x2e),
    usedDirsCount: hi16(u16(b, o + 0x10), 0x30),
    flags: u16(b, o + 0x12),
    itableUnused: hi16(u16(b, o + 0x1c), 0x32),
    checksum: u16(b, o + 0x1e),
    checksumValid: true,
  };
  if (
    wide && (u32(b, o + 0x20) > 0x1fffff || u32(b, o + 0x24) > 0x1fffff ||
      u32(b, o + 0x28) > 0x1fffff)
  ) {
    const big = (lo: number, hiOff: number) =>
      (BigInt(u32(b, o + hiOff)) << 32n) | BigInt(u32(b, o + lo));
    d.exact = { blockBitmap: big(0, 0x20), inodeBitmap: big(4, 0x24), inodeTable: big(8, 0x28) };
  }
  return d;
}

/** What {@linkcode extGroupDescChecksum} needs to know about the file system. */
export interface GroupDescChecksumParams {
  /** "crc32c" for metadata_csum, "crc16" for uninit_bg (gdt_csum). */
  kind: "crc32c" | "crc16";
  /** The fs UUID (s_uuid). */
  uuid: Uint8Array;
  /** The metadata checksum seed (crc32c of the UUID, or s_checksum_seed). */
  csumSeed: number;
  /** EXT2_DESC_SIZE: 32 without 64bit, s_desc_size with it. */
  descSize: number;
}

/**
 * Computes a group descriptor's 16-bit checksum over `desc` (exactly `descSize` bytes, the
 * stored checksum field is skipped) for group number `group`.
 *
 * @example
 * ```ts
 * import { extGroupDescChecksum } from "./group_desc.ts";
 * const sum = extGroupDescChecksum(new Uint8Array(32), 0, {
 *   kind: "crc16", uuid: new Uint8Array(16), csumSeed: 0, descSize: 32,
 * });
 * console.assert(sum >= 0 && sum <= 0xffff);
 * ```
 */
export function extGroupDescChecksum(
  desc: Uint8Array,
  group: number,
  p: GroupDescChecksumParams,
): number {
  const g = new Uint8Array(4);
  new DataView(g.buffer).setUint32(0, group >>> 0, true);
  const size = p.descSize;
  if (p.kind === "crc32c") {
    const copy = desc.slice(0, size);
    copy[0x1e] = 0;
    copy[0x1f] = 0;
    let c = crc32cUpdate(p.csumSeed, g);
    c = crc32cUpdate(c, copy);
    return c & 0xffff;
  }
  let c = crc16(0xffff, p.uuid);
  c = crc16(c, g);
  c = crc16(c, desc.subarray(0, 0x1e));
  if (0x20 < size) c = crc16(c, desc.subarray(0x20, size));
  return c;
}
