/**
 * ext extended-attribute blocks (the block `i_file_acl` points to): {@linkcode
 * parseExtXattrBlockHeader} decodes and validates the 32-byte header, {@linkcode
 * iterExtXattrEntries} the entries that follow it.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { u16, u32, u8 } from "../_internal/bytes.ts";

/** h_magic of an xattr block. */
export const EXT2_XATTR_MAGIC = 0xea020000;

/** The xattr block header. */
export interface ExtXattrBlockHeader {
  /** 0x00 h_magic. */
  magic: number;
  /** 0x04 h_refcount: how many inodes share the block. */
  refcount: number;
  /** 0x08 h_blocks (always 1). */
  blocks: number;
  /** 0x0C h_hash. */
  hash: number;
  /** 0x10 h_checksum (metadata_csum). */
  checksum: number;
}

/** One xattr entry of a block. */
export interface ExtXattrEntry {
  /** Offset of the entry in the block. */
  offset: number;
  /** e_name_index (1 user, 2 posix acl access, 4 trusted, 6 security, 7 system, ...). */
  nameIndex: number;
  /** The name bytes (without the index prefix). */
  name: Uint8Array;
  /** e_value_offs, from the start of the block. */
  valueOffset: number;
  /** e_value_size. */
  valueSize: number;
  /** e_value_inum (ea_inode: the value lives in this inode). */
  valueInum: number;
}

/**
 * Decodes the header of an xattr block; throws {@linkcode CorruptImageError} for a bad magic or
 * an h_blocks other than 1. `base` is the block's byte offset in the source, for messages.
 *
 * @example
 * ```ts
 * import { parseExtXattrBlockHeader } from "./xattr.ts";
 * const b = new Uint8Array(1024);
 * new DataView(b.buffer).setUint32(0, 0xea020000, true);
 * b[4] = 1; b[8] = 1;
 * console.assert(parseExtXattrBlockHeader(b).refcount === 1);
 * ```
 */
export function parseExtXattrBlockHeader(block: Uint8Array, base = 0): ExtXattrBlockHeader {
  const magic = u32(block, 0, "xattr h_magic");
  if (magic !== EXT2_XATTR_MAGIC) {
    throw new CorruptImageError(
      `Cannot read ext xattr block: h_magic must be 0xea020000, found 0x${
        magic.toString(16)
      } (byte 0x${base.toString(16)})`,
      { format: "ext", structure: "xattr block", field: "h_magic", offset: base },
    );
  }
  const blocks = u32(block, 8, "xattr h_blocks");
  if (blocks !== 1) {
    throw new CorruptImageError(
      `Cannot read ext xattr block: h_blocks must be 1, found ${blocks} (byte 0x${
        (base + 8).toString(16)
      })`,
      { format: "ext", structure: "xattr block", field: "h_blocks", offset: base + 8 },
    );
  }
  return {
    magic,
    refcount: u32(block, 4),
    blocks,
    hash: u32(block, 0x0c),
    checksum: u32(block, 0x10),
  };
}

/**
 * Yields the entries of an xattr block (after its 32-byte header) up to the terminating four
 * zero bytes. Every entry and value must lie inside the block.
 *
 * @example
 * ```ts
 * import { iterExtXattrEntries } from "./xattr.ts";
 * console.assert([...iterExtXattrEntries(new Uint8Array(1024))].length === 0);
 * ```
 */
export function* iterExtXattrEntries(
  block: Uint8Array,
  base = 0,
): Generator<ExtXattrEntry, void, undefined> {
  let p = 32;
  const bs = block.length;
  while (p + 4 <= bs && u32(block, p) !== 0) {
    const nameLen = u8(block, p);
    const size = 16 + nameLen;
    if (p + size > bs) {
      throw new CorruptImageError(
        `Cannot read ext xattr entry: it runs past the block (byte 0x${(base + p).toString(16)})`,
        { format: "ext", structure: "xattr entry", offset: base + p },
      );
    }
    const valueOffset = u16(block, p + 2);
    const valueInum = u32(block, p + 4);
    const valueSize = u32(block, p + 8);
    if (valueInum === 0 && valueOffset + valueSize > bs) {
      throw new CorruptImageError(
        `Cannot read ext xattr entry: value of ${valueSize} bytes at ${valueOffset} runs past the block (byte 0x${
          (base + p + 2).toString(16)
        })`,
        { format: "ext", structure: "xattr entry", field: "e_value_offs", offset: base + p + 2 },
      );
    }
    yield {
      offset: p,
      nameIndex: u8(block, p + 1),
      name: block.subarray(p + 16, p + 16 + nameLen),
      valueOffset,
      valueSize,
      valueInum,
    };
    p += (size + 3) & ~3;
  }
}
