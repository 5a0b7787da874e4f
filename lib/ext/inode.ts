/**
 * The ext inode codec: {@linkcode parseExtInode} decodes the classic 128-byte part of an
 * on-disk inode (and `i_extra_isize` when present), plus the mode and flag constants and
 * libext2fs's `ext2fs_inode_has_valid_blocks2` rule.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { u16 } from "../_internal/bytes.ts";

/** File type bits of `i_mode`. */
export const S_IFMT = 0xf000;
/** Directory. */
export const S_IFDIR = 0x4000;
/** Regular file. */
export const S_IFREG = 0x8000;
/** Symbolic link. */
export const S_IFLNK = 0xa000;

/** `i_flags` bits used here. */
export const INODE_FLAGS = {
  INDEX: 0x1000,
  EXTENTS: 0x80000,
  EA_INODE: 0x200000,
  INLINE_DATA: 0x10000000,
} as const;

/** Special inode numbers. */
export const INO = {
  BAD: 1,
  ROOT: 2,
  USR_QUOTA: 3,
  GRP_QUOTA: 4,
  RESIZE: 7,
  JOURNAL: 8,
} as const;

/** A parsed inode (the fields fsimage uses). */
export interface ExtInode {
  /** 0x00 i_mode. */
  mode: number;
  /** 0x02 i_uid (low 16 bits). */
  uid: number;
  /** 0x04 i_size_lo + 0x6C i_size_high. */
  size: number;
  /** 0x04 i_size_lo alone (what libext2fs's 32-bit checks use). */
  sizeLo: number;
  /** 0x1A i_links_count. */
  linksCount: number;
  /** 0x1C i_blocks_lo. */
  blocksLo: number;
  /** 0x20 i_flags. */
  flags: number;
  /** 0x24 osd1 (the HURD translator block on Hurd file systems). */
  osd1: number;
  /** 0x28 i_block[15] as u32 values. */
  block: number[];
  /** 0x28 the 60 raw bytes of i_block (extent root, inline data, fast symlink). */
  blockBytes: Uint8Array;
  /** 0x64 i_generation. */
  generation: number;
  /** 0x68 i_file_acl_lo + 0x76 l_i_file_acl_high (high only when `wide`). */
  fileAcl: number;
  /** 0x80 i_extra_isize (0 for 128-byte inodes). */
  extraIsize: number;
}

/**
 * Decodes an inode from `bytes` at `offset` (at least 128 bytes must be present; `i_extra_isize`
 * is read when `inodeSize > 128`). `wide` is true when the fs has the 64bit feature, which
 * makes `l_i_file_acl_high` part of the EA block number (libext2fs's `ext2fs_file_acl_block`).
 *
 * @example
 * ```ts
 * import { parseExtInode, S_IFDIR } from "./inode.ts";
 * const raw = new Uint8Array(128);
 * raw[1] = 0x41; // i_mode 0x41ed
 * raw[0] = 0xed;
 * console.assert((parseExtInode(raw, 0, 128, false).mode & 0xf000) === S_IFDIR);
 * ```
 */
export function parseExtInode(
  bytes: Uint8Array,
  offset: number,
  inodeSize: number,
  wide: boolean,
): ExtInode {
  const o = offset;
  if (!(Number.isInteger(o) && o >= 0 && o + 128 <= bytes.length)) {
    throw new CorruptImageError(
      `Cannot read ext inode: 128 bytes at 0x${
        o.toString(16)
      } lie outside a ${bytes.length}-byte buffer`,
      { format: "ext", structure: "inode", offset: o },
    );
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset + o, 128);
  const block = new Array<number>(15);
  for (let i = 0; i < 15; i++) block[i] = v.getUint32(0x28 + 4 * i, true);
  const sizeLo = v.getUint32(4, true);
  const sizeHi = v.getUint32(0x6c, true);
  return {
    mode: v.getUint16(0, true),
    uid: v.getUint16(2, true),
    size: (sizeHi & 0x1fffff) * 0x100000000 + sizeLo,
    sizeLo,
    linksCount: v.getUint16(0x1a, true),
    blocksLo: v.getUint32(0x1c, true),
    flags: v.getUint32(0x20, true),
    osd1: v.getUint32(0x24, true),
    block,
    blockBytes: bytes.slice(o + 0x28, o + 0x64),
    generation: v.getUint32(0x64, true),
    fileAcl: v.getUint32(0x68, true) + (wide ? v.getUint16(0x76, true) * 0x100000000 : 0),
    extraIsize: inodeSize > 128 && o + 0x82 <= bytes.length
      ? u16(bytes, o + 0x80, "i_extra_isize")
      : 0,
  };
}

/**
 * libext2fs's `ext2fs_inode_has_valid_blocks2`: true when `i_block` holds block pointers (a
 * directory, regular file or symlink that is neither inline-data nor a fast symlink).
 *
 * @example
 * ```ts
 * import { inodeHasValidBlocks, parseExtInode } from "./inode.ts";
 * console.assert(!inodeHasValidBlocks(parseExtInode(new Uint8Array(128), 0, 128, false)));
 * ```
 */
export function inodeHasValidBlocks(inode: ExtInode): boolean {
  const fmt = inode.mode & S_IFMT;
  if (fmt !== S_IFDIR && fmt !== S_IFREG && fmt !== S_IFLNK) return false;
  if (fmt === S_IFLNK) {
    if (inode.fileAcl === 0) {
      if (inode.blocksLo === 0) return false;
    } else {
      if (inode.sizeLo >= 60) return true;
      if (inode.sizeLo > 4 && inode.block[1] === 0) return true;
      return false;
    }
  }
  if (inode.flags & INODE_FLAGS.INLINE_DATA) return false;
  return true;
}
