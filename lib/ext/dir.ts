/**
 * ext directory blocks: {@linkcode iterExtDirEntries} walks the linear entries of one block
 * (`ext2_dir_entry_2`), validating each record the way the kernel and e2fsck do, and
 * {@linkcode decodeRecLen} decodes a record length (64 KiB blocks store 65536 as 0 or 65535).
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";

/** One directory entry. */
export interface ExtDirEntry {
  /** Byte offset of the entry in the block. */
  offset: number;
  /** inode (0 = unused entry). */
  inode: number;
  /** Decoded rec_len. */
  recLen: number;
  /** name_len. */
  nameLen: number;
  /** file_type (with the filetype feature; otherwise the high byte of name_len). */
  fileType: number;
  /** The raw name bytes. */
  name: Uint8Array;
}

/**
 * Decodes an on-disk rec_len for a block of `blockSize` bytes (libext2fs's
 * `ext2fs_get_rec_len`).
 *
 * @example
 * ```ts
 * import { decodeRecLen } from "./dir.ts";
 * console.assert(decodeRecLen(0, 65536) === 65536 && decodeRecLen(12, 4096) === 12);
 * ```
 */
export function decodeRecLen(raw: number, blockSize: number): number {
  if (raw === 65535 || raw === 0) return blockSize;
  return (raw & 65532) | ((raw & 3) << 16);
}

/**
 * Yields the entries of one linear directory block (an htree node is one big empty entry),
 * the checksum tail (inode 0, rec_len 12, name_len 0, file_type 0xDE) included. Throws
 * {@linkcode CorruptImageError} with the byte offset (`base` + offset in the block) for a
 * rec_len below 8 or 12 + name, not a multiple of 4, or past the block end.
 *
 * @example
 * ```ts
 * import { iterExtDirEntries } from "./dir.ts";
 * const b = new Uint8Array(1024);
 * b[0] = 2; b[4] = 0; b[5] = 4; b[6] = 1; b[8] = 0x2e; // ".", rec_len 1024
 * console.assert([...iterExtDirEntries(b)].length === 1);
 * ```
 */
export function* iterExtDirEntries(
  block: Uint8Array,
  base = 0,
): Generator<ExtDirEntry, void, undefined> {
  const bs = block.length;
  let p = 0;
  while (p < bs) {
    if (p + 8 > bs) {
      throw new CorruptImageError(
        `Cannot read ext directory entry: header at 0x${
          (base + p).toString(16)
        } runs past the block`,
        { format: "ext", structure: "directory block", offset: base + p },
      );
    }
    const inode = (block[p]! | (block[p + 1]! << 8) | (block[p + 2]! << 16) |
      (block[p + 3]! << 24)) >>> 0;
    const recLen = decodeRecLen(block[p + 4]! | (block[p + 5]! << 8), bs);
    const nameLen = block[p + 6]!;
    if (recLen < 8 || recLen % 4 !== 0 || p + recLen > bs || nameLen + 8 > recLen) {
      throw new CorruptImageError(
        `Cannot read ext directory entry: rec_len ${recLen} with name_len ${nameLen} at byte 0x${
          (base + p + 4).toString(16)
        } does not fit the ${bs - p} bytes left in the block`,
        {
          format: "ext",
          structure: "directory entry",
          field: "rec_len",
          offset: base + p + 4,
          actual: String(recLen),
        },
      );
    }
    yield {
      offset: p,
      inode,
      recLen,
      nameLen,
      fileType: block[p + 7]!,
      name: block.subarray(p + 8, p + 8 + nameLen),
    };
    p += recLen;
  }
}
