/**
 * Checksums and hashes the ext scrubber must redo after it changes metadata: metadata_csum
 * superblock, inode, directory-leaf and xattr-block checksums, the xattr entry and block
 * hashes, and the jbd2 superblock checksum. All follow libext2fs (csum.c, ext_attr.c).
 *
 * @module
 */
import { put16, put32, put32be, u16, u32, u32be } from "../_internal/bytes.ts";
import { crc32cUpdate } from "../_internal/crc.ts";

/** Byte offset of `s_checksum` in the superblock. */
export const SB_CHECKSUM_OFFSET = 0x3fc;

/** Recomputes `s_checksum` of a 1024-byte superblock in place (metadata_csum). */
export function setSuperblockChecksum(sb: Uint8Array): void {
  put32(sb, SB_CHECKSUM_OFFSET, crc32cUpdate(0xffffffff, sb.subarray(0, SB_CHECKSUM_OFFSET)));
}

/** Verifies `s_checksum` of a 1024-byte superblock. */
export function superblockChecksumOk(sb: Uint8Array): boolean {
  return crc32cUpdate(0xffffffff, sb.subarray(0, SB_CHECKSUM_OFFSET)) ===
    u32(sb, SB_CHECKSUM_OFFSET);
}

function le32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  put32(b, 0, v);
  return b;
}

/**
 * libext2fs's inode checksum of `raw` (the whole on-disk inode, `raw.length` bytes) for inode
 * number `ino`; `raw` is not modified. Returns the 32-bit value (only the low 16 bits are
 * meaningful without `i_checksum_hi`).
 */
export function inodeChecksum(raw: Uint8Array, ino: number, csumSeed: number): number {
  const b = raw.slice();
  const hasHi = b.length > 128 && u16(b, 0x80) >= 4;
  put16(b, 0x7c, 0); // l_i_checksum_lo
  if (hasHi) put16(b, 0x82, 0); // i_checksum_hi
  let c = crc32cUpdate(csumSeed, le32(ino));
  c = crc32cUpdate(c, b.subarray(0x64, 0x68)); // i_generation
  c = crc32cUpdate(c, b);
  return hasHi ? c >>> 0 : c & 0xffff;
}

/** Stores the metadata_csum checksum of inode `ino` into `raw` in place. */
export function setInodeChecksum(raw: Uint8Array, ino: number, csumSeed: number): void {
  const c = inodeChecksum(raw, ino, csumSeed);
  put16(raw, 0x7c, c & 0xffff);
  if (raw.length > 128 && u16(raw, 0x80) >= 4) put16(raw, 0x82, c >>> 16);
}

/** Size of the metadata_csum directory-leaf tail (`struct ext2_dir_entry_tail`). */
export const DIRENT_TAIL_SIZE = 12;

/** True when `block` ends with a directory checksum tail. */
export function hasDirentTail(block: Uint8Array): boolean {
  const t = block.length - DIRENT_TAIL_SIZE;
  return t >= 0 && u32(block, t) === 0 && u16(block, t + 4) === DIRENT_TAIL_SIZE &&
    block[t + 6] === 0 && block[t + 7] === 0xde;
}

/** Writes an empty tail (with a zero checksum) at the end of `block`. */
export function writeDirentTail(block: Uint8Array): void {
  const t = block.length - DIRENT_TAIL_SIZE;
  block.fill(0, t);
  put16(block, t + 4, DIRENT_TAIL_SIZE);
  block[t + 7] = 0xde;
}

/** Recomputes the tail checksum of a directory leaf block of inode `ino` (generation `gen`). */
export function setDirBlockChecksum(
  block: Uint8Array,
  ino: number,
  gen: number,
  csumSeed: number,
): void {
  const t = block.length - DIRENT_TAIL_SIZE;
  let c = crc32cUpdate(csumSeed, le32(ino));
  c = crc32cUpdate(c, le32(gen));
  c = crc32cUpdate(c, block.subarray(0, t));
  put32(block, t + 8, c);
}

/** libext2fs's `ext2fs_ext_attr_hash_entry` over a name and (unless in an inode) a value. */
export function xattrEntryHash(name: Uint8Array, value: Uint8Array | undefined): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name[i]! >= 0x80 ? name[i]! - 256 : name[i]!; // char is signed on x86
    h = ((h << 5) ^ (h >>> 27) ^ c) >>> 0;
  }
  if (value) {
    const words = Math.ceil(value.length / 4);
    for (let i = 0; i < words; i++) {
      let w = 0;
      for (let k = 3; k >= 0; k--) w = (w * 256) + (value[4 * i + k] ?? 0);
      h = ((h << 16) ^ (h >>> 16) ^ w) >>> 0;
    }
  }
  return h >>> 0;
}

/** libext2fs's block hash from the entry hashes (0 when any entry hash is 0). */
export function xattrBlockHash(entryHashes: readonly number[]): number {
  let h = 0;
  for (const e of entryHashes) {
    if (e === 0) return 0;
    h = ((h << 16) ^ (h >>> 16) ^ e) >>> 0;
  }
  return h >>> 0;
}

/** Recomputes `h_checksum` (offset 0x10) of an xattr block at fs block `blockNumber`. */
export function setXattrBlockChecksum(
  block: Uint8Array,
  blockNumber: number,
  csumSeed: number,
): void {
  put32(block, 0x10, 0);
  const n = new Uint8Array(8);
  put32(n, 0, blockNumber % 0x100000000);
  put32(n, 4, Math.floor(blockNumber / 0x100000000));
  let c = crc32cUpdate(csumSeed, n);
  c = crc32cUpdate(c, block);
  put32(block, 0x10, c);
}

/** jbd2 superblock magic (big-endian at 0). */
export const JBD2_MAGIC = 0xc03b3998;

/** Recomputes a jbd2 superblock's checksum (v2/v3) in place; a no-op without it. */
export function setJournalSuperblockChecksum(jsb: Uint8Array): void {
  const incompat = u32be(jsb, 0x28);
  if (!(incompat & 0x18)) return; // JBD2_FEATURE_INCOMPAT_CSUM_V2 | _V3
  put32be(jsb, 0xfc, 0);
  put32be(jsb, 0xfc, crc32cUpdate(0xffffffff, jsb.subarray(0, 1024)));
}

/** Recomputes `mmp_checksum` (offset 0x3FC) of an MMP block in place (metadata_csum). */
export function setMmpChecksum(mmp: Uint8Array, csumSeed: number): void {
  put32(mmp, 0x3fc, crc32cUpdate(csumSeed, mmp.subarray(0, 0x3fc)));
}
