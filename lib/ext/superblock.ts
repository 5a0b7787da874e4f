/**
 * The ext2/3/4 superblock codec: {@linkcode parseExtSuperblock} decodes the 1024 on-disk bytes
 * and applies libext2fs's open-time checks (`ext2fs_open2`), in libext2fs's order, so a caller
 * can print the original tool's message from `details.compat`.
 *
 * @module
 */
import { CorruptImageError, UnsupportedFeatureError } from "../errors.ts";
import { u16, u32, u8 } from "../_internal/bytes.ts";

/** Size of the on-disk superblock. */
export const SUPERBLOCK_SIZE = 1024;
/** Byte offset of the primary superblock. */
export const SUPERBLOCK_OFFSET = 1024;
/** `s_magic`. */
export const EXT2_SUPER_MAGIC = 0xef53;

/** `s_feature_compat` bits. */
export const COMPAT = {
  DIR_PREALLOC: 0x1,
  IMAGIC_INODES: 0x2,
  HAS_JOURNAL: 0x4,
  EXT_ATTR: 0x8,
  RESIZE_INODE: 0x10,
  DIR_INDEX: 0x20,
  SPARSE_SUPER2: 0x200,
  FAST_COMMIT: 0x400,
  STABLE_INODES: 0x800,
  ORPHAN_FILE: 0x1000,
} as const;

/** `s_feature_incompat` bits. */
export const INCOMPAT = {
  COMPRESSION: 0x1,
  FILETYPE: 0x2,
  RECOVER: 0x4,
  JOURNAL_DEV: 0x8,
  META_BG: 0x10,
  EXTENTS: 0x40,
  BIT64: 0x80,
  MMP: 0x100,
  FLEX_BG: 0x200,
  EA_INODE: 0x400,
  DIRDATA: 0x1000,
  CSUM_SEED: 0x2000,
  LARGEDIR: 0x4000,
  INLINE_DATA: 0x8000,
  ENCRYPT: 0x10000,
  CASEFOLD: 0x20000,
} as const;

/** `s_feature_ro_compat` bits. */
export const RO_COMPAT = {
  SPARSE_SUPER: 0x1,
  LARGE_FILE: 0x2,
  HUGE_FILE: 0x8,
  GDT_CSUM: 0x10,
  DIR_NLINK: 0x20,
  EXTRA_ISIZE: 0x40,
  QUOTA: 0x100,
  BIGALLOC: 0x200,
  METADATA_CSUM: 0x400,
  PROJECT: 0x2000,
  ORPHAN_PRESENT: 0x10000,
} as const;

/** The incompatible features libext2fs 1.47 can open (EXT2_LIB_FEATURE_INCOMPAT_SUPP). */
export const SUPPORTED_INCOMPAT: number = INCOMPAT.FILETYPE | INCOMPAT.JOURNAL_DEV |
  INCOMPAT.META_BG | INCOMPAT.RECOVER | INCOMPAT.EXTENTS | INCOMPAT.FLEX_BG |
  INCOMPAT.EA_INODE | INCOMPAT.MMP | INCOMPAT.BIT64 | INCOMPAT.INLINE_DATA |
  INCOMPAT.ENCRYPT | INCOMPAT.CASEFOLD | INCOMPAT.CSUM_SEED | INCOMPAT.LARGEDIR;

/** `s_creator_os` value of GNU Hurd (inodes may carry a translator block). */
export const EXT2_OS_HURD = 1;

/** libext2fs's messages (lib/ext2fs/ext2_err.et) used by the ext module. */
export const EXT2_MESSAGES = {
  BAD_MAGIC: "Bad magic number in super-block",
  REV_TOO_HIGH: "Filesystem revision too high",
  CORRUPT_SUPERBLOCK: "The ext2 superblock is corrupt",
  UNSUPP_FEATURE: "Filesystem has unsupported feature(s)",
  UNEXPECTED_BLOCK_SIZE: "Filesystem has unexpected block size",
  BAD_DESC_SIZE: "Block group descriptor size incorrect",
  INVALID_ARGUMENT: "Invalid argument passed to ext2 library",
  SHORT_READ: "Attempt to read block from filesystem resulted in short read",
  GDESC_BAD_INODE_TABLE: "Corrupt group descriptor: bad block for inode table",
  MISSING_INODE_TABLE: "A block group is missing an inode table",
  NEXT_INODE_READ: "Can't read next inode",
  BAD_BLOCK_MARK: "Illegal block number passed to ext2fs_mark_block_bitmap",
  BAD_IND_BLOCK: "Illegal indirect block found",
  BAD_DIND_BLOCK: "Illegal doubly indirect block found",
  BAD_TIND_BLOCK: "Illegal triply indirect block found",
  EXTENT_HEADER_BAD: "Corrupt extent header",
  EXTENT_NO_DOWN: "No 'down' extent",
  EXTENT_CYCLE: "Found cyclic loop in extent tree",
} as const;

/** The parsed superblock; field names are the on-disk `s_*` names in camelCase. */
export interface ExtSuperblock {
  /** 0x00 s_inodes_count. */
  inodesCount: number;
  /** 0x04 s_blocks_count_lo + 0x150 s_blocks_count_hi (hi only with 64bit). */
  blocksCount: number;
  /** 0x08 s_r_blocks_count (lo + hi with 64bit). */
  rBlocksCount: number;
  /** 0x0C s_free_blocks_count (lo + hi with 64bit). */
  freeBlocksCount: number;
  /** 0x10 s_free_inodes_count. */
  freeInodesCount: number;
  /** 0x14 s_first_data_block. */
  firstDataBlock: number;
  /** 0x18 s_log_block_size. */
  logBlockSize: number;
  /** 0x1C s_log_cluster_size. */
  logClusterSize: number;
  /** 0x20 s_blocks_per_group. */
  blocksPerGroup: number;
  /** 0x24 s_clusters_per_group. */
  clustersPerGroup: number;
  /** 0x28 s_inodes_per_group. */
  inodesPerGroup: number;
  /** 0x2C s_mtime. */
  mtime: number;
  /** 0x30 s_wtime. */
  wtime: number;
  /** 0x38 s_magic. */
  magic: number;
  /** 0x3A s_state. */
  state: number;
  /** 0x48 s_creator_os. */
  creatorOs: number;
  /** 0x4C s_rev_level. */
  revLevel: number;
  /** 0x54 s_first_ino (11 for revision 0). */
  firstIno: number;
  /** 0x58 s_inode_size (128 for revision 0). */
  inodeSize: number;
  /** 0x5C s_feature_compat. */
  featureCompat: number;
  /** 0x60 s_feature_incompat. */
  featureIncompat: number;
  /** 0x64 s_feature_ro_compat. */
  featureRoCompat: number;
  /** 0x68 s_uuid. */
  uuid: Uint8Array;
  /** 0x78 s_volume_name, NUL-trimmed. */
  volumeName: string;
  /** 0xCE s_reserved_gdt_blocks. */
  reservedGdtBlocks: number;
  /** 0xE0 s_journal_inum. */
  journalInum: number;
  /** 0xE8 s_last_orphan. */
  lastOrphan: number;
  /** 0xEC s_hash_seed (16 bytes). */
  hashSeed: Uint8Array;
  /** 0xFC s_def_hash_version. */
  defHashVersion: number;
  /** 0xFE s_desc_size as stored. */
  descSize: number;
  /** 0x104 s_first_meta_bg. */
  firstMetaBg: number;
  /** 0x168 s_mmp_block (u64). */
  mmpBlock: number;
  /** 0x174 s_log_groups_per_flex. */
  logGroupsPerFlex: number;
  /** 0x175 s_checksum_type. */
  checksumType: number;
  /** 0x240 s_usr_quota_inum. */
  usrQuotaInum: number;
  /** 0x244 s_grp_quota_inum. */
  grpQuotaInum: number;
  /** 0x24C s_backup_bgs[2]. */
  backupBgs: [number, number];
  /** 0x26C s_prj_quota_inum. */
  prjQuotaInum: number;
  /** 0x270 s_checksum_seed. */
  checksumSeed: number;
  /** 0x280 s_orphan_file_inum. */
  orphanFileInum: number;
  /** 0x3FC s_checksum. */
  checksum: number;
}

/** Options of {@linkcode parseExtSuperblock}. */
export interface ParseExtSuperblockOptions {
  /** Absolute byte offset of `bytes` in the source, for error messages. Default 1024. */
  offset?: number;
  /** The block size the caller expects (e2image -B); a mismatch is refused. */
  expectedBlockSize?: number;
}

function corrupt(
  message: string,
  compat: string,
  field: string,
  offset: number,
  actual?: number,
): CorruptImageError {
  return new CorruptImageError(
    `Cannot read ext superblock: ${message} (byte 0x${offset.toString(16)})`,
    {
      format: "ext",
      structure: "superblock",
      field,
      offset,
      ...(actual !== undefined ? { actual: String(actual) } : {}),
      compat,
    },
  );
}

function u64lohi(b: Uint8Array, lo: number, hi: number, wide: boolean, what: string): number {
  const l = u32(b, lo, what);
  if (!wide) return l;
  const h = u32(b, hi, what);
  if (h > 0x1fffff) {
    throw corrupt(`${what} exceeds 2^53`, EXT2_MESSAGES.CORRUPT_SUPERBLOCK, what, hi, h);
  }
  return h * 0x100000000 + l;
}

/** A 64-bit field libext2fs does not validate: past 2^53 it is rounded, never refused. */
function lenient64(b: Uint8Array, lo: number, hi: number, wide: boolean): number {
  return u32(b, lo) + (wide ? u32(b, hi) * 0x100000000 : 0);
}

/**
 * Decodes a 1024-byte ext superblock and applies libext2fs's open-time checks in its order:
 * magic, revision, incompatible features, block/cluster size logs, bigalloc cluster ratio,
 * inode size, 64-bit descriptor size, blocks vs. clusters per group, the expected block size,
 * inodes per group, group limits, group and inode counts, and `s_first_meta_bg`.
 *
 * Throws {@linkcode CorruptImageError} (or {@linkcode UnsupportedFeatureError}) whose `compat`
 * is libext2fs's message.
 *
 * @example
 * ```ts
 * import { parseExtSuperblock } from "./superblock.ts";
 * try {
 *   parseExtSuperblock(new Uint8Array(1024));
 * } catch (e) {
 *   console.assert((e as { details: { compat: string } }).details.compat ===
 *     "Bad magic number in super-block");
 * }
 * ```
 */
export function parseExtSuperblock(
  bytes: Uint8Array,
  options: ParseExtSuperblockOptions = {},
): ExtSuperblock {
  const base = options.offset ?? SUPERBLOCK_OFFSET;
  if (bytes.length < SUPERBLOCK_SIZE) {
    throw new CorruptImageError(
      `Cannot read ext superblock: need ${SUPERBLOCK_SIZE} bytes, found ${bytes.length} (byte 0x${
        base.toString(16)
      })`,
      { format: "ext", structure: "superblock", offset: base, compat: EXT2_MESSAGES.SHORT_READ },
    );
  }
  const b = bytes;
  const magic = u16(b, 0x38);
  if (magic !== EXT2_SUPER_MAGIC) {
    throw corrupt(
      `s_magic must be 0xef53, found 0x${magic.toString(16)}`,
      EXT2_MESSAGES.BAD_MAGIC,
      "s_magic",
      base + 0x38,
      magic,
    );
  }
  const revLevel = u32(b, 0x4c);
  if (revLevel > 1) {
    throw corrupt(
      `s_rev_level must be at most 1, found ${revLevel}`,
      EXT2_MESSAGES.REV_TOO_HIGH,
      "s_rev_level",
      base + 0x4c,
      revLevel,
    );
  }
  const featureCompat = u32(b, 0x5c);
  const featureIncompat = u32(b, 0x60);
  const featureRoCompat = u32(b, 0x64);
  const unsupported = featureIncompat & ~SUPPORTED_INCOMPAT;
  if (unsupported) {
    throw new UnsupportedFeatureError(
      "ext",
      `incompat 0x${unsupported.toString(16)}`,
      `Cannot open ext file system: unsupported incompatible feature bits 0x${
        unsupported.toString(16)
      } (byte 0x${(base + 0x60).toString(16)})`,
      EXT2_MESSAGES.UNSUPP_FEATURE,
    );
  }
  if (featureIncompat & INCOMPAT.JOURNAL_DEV) {
    throw new UnsupportedFeatureError(
      "ext",
      "journal_dev",
      "Cannot open ext file system: it is an external journal device (journal_dev)",
      EXT2_MESSAGES.UNSUPP_FEATURE,
    );
  }
  const bigalloc = (featureRoCompat & RO_COMPAT.BIGALLOC) !== 0;
  const is64 = (featureIncompat & INCOMPAT.BIT64) !== 0;
  const logBlockSize = u32(b, 0x18);
  const logClusterSize = u32(b, 0x1c);
  const logGroupsPerFlex = u8(b, 0x174);
  const C = EXT2_MESSAGES.CORRUPT_SUPERBLOCK;
  if (logBlockSize > 6) {
    throw corrupt(
      `s_log_block_size must be at most 6, found ${logBlockSize}`,
      C,
      "s_log_block_size",
      base + 0x18,
      logBlockSize,
    );
  }
  if (logClusterSize > 19 || logBlockSize > logClusterSize) {
    throw corrupt(
      `s_log_cluster_size must be in ${logBlockSize}..19, found ${logClusterSize}`,
      C,
      "s_log_cluster_size",
      base + 0x1c,
      logClusterSize,
    );
  }
  if (logGroupsPerFlex > 31) {
    throw corrupt(
      `s_log_groups_per_flex must be at most 31, found ${logGroupsPerFlex}`,
      C,
      "s_log_groups_per_flex",
      base + 0x174,
      logGroupsPerFlex,
    );
  }
  if (!bigalloc && logClusterSize !== logBlockSize) {
    throw corrupt(
      `s_log_cluster_size must equal s_log_block_size (${logBlockSize}) without bigalloc, found ${logClusterSize}`,
      C,
      "s_log_cluster_size",
      base + 0x1c,
      logClusterSize,
    );
  }
  const blockSize = 1024 << logBlockSize;
  const inodeSize = revLevel === 0 ? 128 : u16(b, 0x58);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
    throw corrupt(
      `s_inode_size must be a power of two in 128..${blockSize}, found ${inodeSize}`,
      C,
      "s_inode_size",
      base + 0x58,
      inodeSize,
    );
  }
  const descSize = u16(b, 0xfe);
  if (is64 && (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) !== 0)) {
    throw corrupt(
      `s_desc_size must be a power of two in 64..1024 with 64bit, found ${descSize}`,
      EXT2_MESSAGES.BAD_DESC_SIZE,
      "s_desc_size",
      base + 0xfe,
      descSize,
    );
  }
  const ratioBits = logClusterSize - logBlockSize;
  const blocksPerGroup = u32(b, 0x20);
  const clustersPerGroup = u32(b, 0x24);
  // libext2fs compares in 32-bit unsigned arithmetic.
  if (blocksPerGroup !== ((clustersPerGroup << ratioBits) >>> 0)) {
    throw corrupt(
      `s_blocks_per_group (${blocksPerGroup}) must equal s_clusters_per_group (${clustersPerGroup}) << ${ratioBits}`,
      C,
      "s_blocks_per_group",
      base + 0x20,
      blocksPerGroup,
    );
  }
  const inodesPerGroup = u32(b, 0x28);
  if (options.expectedBlockSize !== undefined && options.expectedBlockSize !== blockSize) {
    throw corrupt(
      `block size is ${blockSize}, not the expected ${options.expectedBlockSize}`,
      EXT2_MESSAGES.UNEXPECTED_BLOCK_SIZE,
      "s_log_block_size",
      base + 0x18,
      blockSize,
    );
  }
  if (inodesPerGroup === 0) {
    throw corrupt("s_inodes_per_group must not be 0", C, "s_inodes_per_group", base + 0x28, 0);
  }
  const blocksCount = u64lohi(b, 0x04, 0x150, is64, "s_blocks_count");
  const firstDataBlock = u32(b, 0x14);
  const inodeBlocksPerGroup = Math.ceil(inodesPerGroup * inodeSize / blockSize);
  const inodesPerBlock = blockSize / inodeSize;
  const descPerBlock = Math.floor(blockSize / (is64 ? descSize : 32));
  if (blocksPerGroup < 8 || blocksPerGroup > 65528 * (1 << ratioBits)) {
    throw corrupt(
      `s_blocks_per_group must be in 8..${65528 * (1 << ratioBits)}, found ${blocksPerGroup}`,
      C,
      "s_blocks_per_group",
      base + 0x20,
      blocksPerGroup,
    );
  }
  if (inodeBlocksPerGroup > 65536 - inodesPerBlock) {
    throw corrupt(
      `s_inodes_per_group (${inodesPerGroup}) needs ${inodeBlocksPerGroup} inode table blocks, more than ${
        65536 - inodesPerBlock
      }`,
      C,
      "s_inodes_per_group",
      base + 0x28,
      inodesPerGroup,
    );
  }
  if (descPerBlock === 0) {
    throw corrupt("descriptors per block is 0", C, "s_desc_size", base + 0xfe, descSize);
  }
  if (firstDataBlock >= blocksCount) {
    throw corrupt(
      `s_first_data_block (${firstDataBlock}) must be below s_blocks_count (${blocksCount})`,
      C,
      "s_first_data_block",
      base + 0x14,
      firstDataBlock,
    );
  }
  const groups = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (groups > 0xffffffff) {
    throw corrupt(`${groups} block groups exceed 2^32`, C, "s_blocks_count", base + 4, blocksCount);
  }
  const inodesCount = u32(b, 0x00);
  if (groups * inodesPerGroup !== inodesCount) {
    throw corrupt(
      `s_inodes_count must be ${groups} groups * ${inodesPerGroup}, found ${inodesCount}`,
      C,
      "s_inodes_count",
      base,
      inodesCount,
    );
  }
  const descBlocks = Math.ceil(groups / descPerBlock);
  const firstMetaBg = u32(b, 0x104);
  if ((featureIncompat & INCOMPAT.META_BG) && firstMetaBg > descBlocks) {
    throw corrupt(
      `s_first_meta_bg must be at most ${descBlocks}, found ${firstMetaBg}`,
      C,
      "s_first_meta_bg",
      base + 0x104,
      firstMetaBg,
    );
  }
  const volName = b.subarray(0x78, 0x88);
  const nul = volName.indexOf(0);
  return {
    inodesCount,
    blocksCount,
    rBlocksCount: lenient64(b, 0x08, 0x154, is64),
    freeBlocksCount: lenient64(b, 0x0c, 0x158, is64),
    freeInodesCount: u32(b, 0x10),
    firstDataBlock,
    logBlockSize,
    logClusterSize,
    blocksPerGroup,
    clustersPerGroup,
    inodesPerGroup,
    mtime: u32(b, 0x2c),
    wtime: u32(b, 0x30),
    magic,
    state: u16(b, 0x3a),
    creatorOs: u32(b, 0x48),
    revLevel,
    firstIno: revLevel === 0 ? 11 : u32(b, 0x54),
    inodeSize,
    featureCompat,
    featureIncompat,
    featureRoCompat,
    uuid: b.slice(0x68, 0x78),
    volumeName: new TextDecoder().decode(nul < 0 ? volName : volName.subarray(0, nul)),
    reservedGdtBlocks: u16(b, 0xce),
    journalInum: u32(b, 0xe0),
    lastOrphan: u32(b, 0xe8),
    hashSeed: b.slice(0xec, 0xfc),
    defHashVersion: u8(b, 0xfc),
    descSize,
    firstMetaBg,
    mmpBlock: lenient64(b, 0x168, 0x16c, true),
    logGroupsPerFlex,
    checksumType: u8(b, 0x175),
    usrQuotaInum: u32(b, 0x240),
    grpQuotaInum: u32(b, 0x244),
    backupBgs: [u32(b, 0x24c), u32(b, 0x250)],
    prjQuotaInum: u32(b, 0x26c),
    checksumSeed: u32(b, 0x270),
    orphanFileInum: u32(b, 0x280),
    checksum: u32(b, 0x3fc),
  };
}
