/**
 * The JBD2 journal superblock (first block of the journal inode, big-endian):
 * {@linkcode parseJournalSuperblock} decodes and validates it.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { u32be } from "../_internal/bytes.ts";

/** h_magic of every JBD2 block. */
export const JBD2_MAGIC = 0xc03b3998;

/** The parsed journal superblock (the fields fsimage uses). */
export interface JournalSuperblock {
  /** 0x04 h_blocktype: 3 (v1) or 4 (v2). */
  blockType: number;
  /** 0x08 h_sequence. */
  sequence: number;
  /** 0x0C s_blocksize. */
  blockSize: number;
  /** 0x10 s_maxlen: journal length in blocks. */
  maxLen: number;
  /** 0x14 s_first: first log block. */
  first: number;
  /** 0x18 s_sequence: first expected commit id. */
  firstSequence: number;
  /** 0x1C s_start: first log block in use (0 = the journal is clean). */
  start: number;
  /** 0x24 s_feature_compat (v2). */
  featureCompat: number;
  /** 0x28 s_feature_incompat (v2). */
  featureIncompat: number;
  /** 0x2C s_feature_ro_compat (v2). */
  featureRoCompat: number;
}

/**
 * Decodes a journal superblock; throws {@linkcode CorruptImageError} for a bad magic or block
 * type, or a block size that is not a power of two in 1024..65536.
 *
 * @example
 * ```ts
 * import { parseJournalSuperblock } from "./journal.ts";
 * const b = new Uint8Array(1024);
 * const v = new DataView(b.buffer);
 * v.setUint32(0, 0xc03b3998); v.setUint32(4, 4); v.setUint32(12, 1024); v.setUint32(16, 1024);
 * console.assert(parseJournalSuperblock(b).maxLen === 1024);
 * ```
 */
export function parseJournalSuperblock(block: Uint8Array, base = 0): JournalSuperblock {
  const bad = (what: string, off: number) =>
    new CorruptImageError(
      `Cannot read the ext journal superblock: ${what} (byte 0x${(base + off).toString(16)})`,
      { format: "ext", structure: "journal superblock", offset: base + off },
    );
  const magic = u32be(block, 0, "journal h_magic");
  if (magic !== JBD2_MAGIC) {
    throw bad(`h_magic must be 0xc03b3998, found 0x${magic.toString(16)}`, 0);
  }
  const blockType = u32be(block, 4);
  if (blockType !== 3 && blockType !== 4) {
    throw bad(`h_blocktype must be 3 or 4, found ${blockType}`, 4);
  }
  const blockSize = u32be(block, 0x0c);
  if (blockSize < 1024 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) {
    throw bad(`s_blocksize must be a power of two in 1024..65536, found ${blockSize}`, 0x0c);
  }
  const v2 = blockType === 4;
  return {
    blockType,
    sequence: u32be(block, 0x08),
    blockSize,
    maxLen: u32be(block, 0x10),
    first: u32be(block, 0x14),
    firstSequence: u32be(block, 0x18),
    start: u32be(block, 0x1c),
    featureCompat: v2 ? u32be(block, 0x24) : 0,
    featureIncompat: v2 ? u32be(block, 0x28) : 0,
    featureRoCompat: v2 ? u32be(block, 0x2c) : 0,
  };
}
