/**
 * {@linkcode ExtVolume}: an opened ext2/3/4 file system over a {@linkcode Source}, with the
 * geometry libext2fs derives at open time, the group descriptors as libext2fs holds them in
 * memory, inode reads, and the in-memory bitmaps.
 *
 * @module
 */
import { CorruptImageError, LimitExceededError } from "../errors.ts";
import type { Source } from "../io/types.ts";
import { crc32cUpdate } from "../_internal/crc.ts";
import {
  EXT2_MESSAGES,
  EXT2_OS_HURD,
  type ExtSuperblock,
  INCOMPAT,
  parseExtSuperblock,
  RO_COMPAT,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
} from "./superblock.ts";
import {
  BG_FLAGS,
  extGroupDescChecksum,
  type ExtGroupDescriptor,
  type GroupDescChecksumParams,
  parseExtGroupDescriptor,
} from "./group_desc.ts";
import { type ExtInode, parseExtInode } from "./inode.ts";
import type { BlockWalkContext } from "./block_map.ts";
import {
  type E2imageSelection,
  type E2imageSelectionOptions,
  selectE2imageBlocks,
} from "./selection.ts";
import { type BlockExtent, mergeBlockExtents } from "../_internal/extents.ts";

/**
 * Largest descriptor table {@linkcode ExtVolume.open} reads: 256 MiB, i.e. 2^22 groups of 64-byte
 * descriptors (a 512 TiB file system with 128 MiB groups). Larger claims are refused with
 * {@linkcode LimitExceededError} instead of exhausting memory.
 */
export const MAX_DESCRIPTOR_BYTES: number = 256 << 20;

/** Options of {@linkcode ExtVolume.open}. */
export interface ExtVolumeOpenOptions {
  /**
   * Read the superblock at this fs block number instead of byte 1024 (e2image `-b`). Requires
   * {@linkcode ExtVolumeOpenOptions.blockSize}. 0 means the primary superblock.
   */
  superblock?: number;
  /**
   * The expected block size (e2image `-B`); the open fails when the fs differs. 0 means not
   * given.
   */
  blockSize?: number;
  /**
   * libext2fs's message for a read at byte `offset` past the end of the source (default
   * "Attempt to read block from filesystem resulted in short read"); see
   * {@linkcode unixPastEndMessage} for what Linux gives on devices and huge offsets.
   */
  pastEndMessage?: (offset: number) => string;
}

function shortRead(
  what: string,
  offset: number,
  pastEnd: (offset: number) => string = () => EXT2_MESSAGES.SHORT_READ,
): CorruptImageError {
  return new CorruptImageError(
    `Cannot read ext ${what}: the source ends before byte 0x${offset.toString(16)}`,
    { format: "ext", structure: what, offset, compat: pastEnd(offset) },
  );
}

/**
 * libext2fs's message for a read past the end of the source, as Linux's unix_io produces it:
 * its short `pread` falls back to `lseek`, which refuses (EINVAL, "Invalid argument") any offset
 * past a block device's end or past the host file system's largest file (2^44 - 4096 bytes on
 * ext4 with 4 KiB blocks); otherwise the read comes back short. Pass it, bound to the source's
 * kind, as {@linkcode ExtVolumeOpenOptions.pastEndMessage}.
 *
 * @example
 * ```ts
 * import { unixPastEndMessage } from "./volume.ts";
 * console.assert(unixPastEndMessage("device", 1 << 30) === "Invalid argument");
 * ```
 */
export function unixPastEndMessage(
  kind: "file" | "device",
  offset: number,
  hostMaxFileSize: number = 2 ** 44 - 4096,
): string {
  if (kind === "device" || offset > hostMaxFileSize) return "Invalid argument";
  return EXT2_MESSAGES.SHORT_READ;
}

/** Reads exactly `buf.length` bytes at `offset`; false when the source ends first. */
function readExact(source: Source, offset: number, buf: Uint8Array): boolean {
  if (offset + buf.length > source.size) return false;
  let done = 0;
  while (done < buf.length) {
    const n = source.readAt(offset + done, buf.subarray(done));
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

/** Sets bits [from, to) of a little-endian bitmap. */
function setBits(bm: Uint8Array, from: number, to: number): void {
  let i = from;
  while (i < to && (i & 7)) {
    bm[i >> 3] = bm[i >> 3]! | (1 << (i & 7));
    i++;
  }
  const fullEnd = to - ((to - i) & 7);
  if (fullEnd > i) {
    bm.fill(0xff, i >> 3, fullEnd >> 3);
    i = fullEnd;
  }
  for (; i < to; i++) bm[i >> 3] = bm[i >> 3]! | (1 << (i & 7));
}

/** True when group `g` holds a superblock backup (libext2fs's `ext2fs_bg_has_super`). */
function bgHasSuper(sb: ExtSuperblock, g: number): boolean {
  if (g === 0) return true;
  if (sb.featureCompat & 0x200) return g === sb.backupBgs[0] || g === sb.backupBgs[1];
  if (g <= 1 || !(sb.featureRoCompat & RO_COMPAT.SPARSE_SUPER)) return true;
  if (!(g & 1)) return false;
  for (const base of [3, 5, 7]) {
    let n = base;
    while (n < g && n <= Number.MAX_SAFE_INTEGER / base) n *= base;
    if (n === g) return true;
  }
  return false;
}

/**
 * An ext2/3/4 file system opened like libext2fs's `ext2fs_open2` (read-only, checksum errors
 * ignored): superblock checks with libext2fs's messages in `details.compat`, descriptors read
 * from their primary (or backup) locations, and the in-memory UNINIT clearing of a backup
 * open.
 *
 * @example
 * ```ts ignore
 * import { ExtVolume } from "./volume.ts";
 * import { openSource } from "../io/mod.ts";
 * const vol = ExtVolume.open(openSource("fs.img"));
 * console.log(vol.blockSize, vol.groupCount);
 * ```
 */
export class ExtVolume {
  /** The source the fs is read from. */
  readonly source: Source;
  /** The parsed superblock. */
  readonly superblock: ExtSuperblock;
  /** Block size in bytes. */
  readonly blockSize: number;
  /** s_blocks_count. */
  readonly blocksCount: number;
  /** s_first_data_block. */
  readonly firstDataBlock: number;
  /** Number of block groups. */
  readonly groupCount: number;
  /** s_inodes_per_group. */
  readonly inodesPerGroup: number;
  /** Inode size in bytes. */
  readonly inodeSize: number;
  /** Inodes per block. */
  readonly inodesPerBlock: number;
  /** Inode table blocks per group. */
  readonly inodeBlocksPerGroup: number;
  /** s_clusters_per_group. */
  readonly clustersPerGroup: number;
  /** Blocks per cluster (1 without bigalloc). */
  readonly clusterRatio: number;
  /** log2 of {@linkcode ExtVolume.clusterRatio}. */
  readonly clusterBits: number;
  /** Group descriptor blocks. */
  readonly descBlocks: number;
  /** EXT2_DESC_SIZE: 32, or s_desc_size with 64bit. */
  readonly descSize: number;
  /** Descriptors per block. */
  readonly descPerBlock: number;
  /** True with uninit_bg (gdt_csum) or metadata_csum. */
  readonly hasGroupChecksums: boolean;
  /** True with the 64bit feature. */
  readonly is64bit: boolean;
  /** The superblock block number the volume was opened with (0 = primary). */
  readonly superblockBlock: number;
  /** The metadata checksum seed (0 without metadata_csum, ea_inode or csum_seed). */
  readonly csumSeed: number;
  /** The group descriptors as libext2fs holds them in memory. */
  readonly groups: readonly ExtGroupDescriptor[];
  /** Block numbers the descriptor blocks were read from, in order. */
  readonly descriptorLocations: readonly number[];
  #sbBytes: Uint8Array;
  #descBytes: Uint8Array;
  #pastEnd: (offset: number) => string = () => EXT2_MESSAGES.SHORT_READ;
  #uninitMarks: BlockExtent[] | undefined;

  private constructor(
    source: Source,
    sbBytes: Uint8Array,
    sb: ExtSuperblock,
    superblockBlock: number,
  ) {
    this.source = source;
    this.#sbBytes = sbBytes;
    this.superblock = sb;
    this.superblockBlock = superblockBlock;
    this.blockSize = 1024 << sb.logBlockSize;
    this.blocksCount = sb.blocksCount;
    this.firstDataBlock = sb.firstDataBlock;
    this.inodesPerGroup = sb.inodesPerGroup;
    this.inodeSize = sb.inodeSize;
    this.inodesPerBlock = this.blockSize / sb.inodeSize;
    this.inodeBlocksPerGroup = Math.ceil(sb.inodesPerGroup * sb.inodeSize / this.blockSize);
    this.clustersPerGroup = sb.clustersPerGroup;
    this.clusterBits = sb.logClusterSize - sb.logBlockSize;
    this.clusterRatio = 1 << this.clusterBits;
    this.is64bit = (sb.featureIncompat & INCOMPAT.BIT64) !== 0;
    this.descSize = this.is64bit ? sb.descSize : 32;
    this.descPerBlock = Math.floor(this.blockSize / this.descSize);
    this.groupCount = Math.ceil((sb.blocksCount - sb.firstDataBlock) / sb.blocksPerGroup);
    this.descBlocks = Math.ceil(this.groupCount / this.descPerBlock);
    const mcsum = (sb.featureRoCompat & RO_COMPAT.METADATA_CSUM) !== 0;
    this.hasGroupChecksums = mcsum || (sb.featureRoCompat & RO_COMPAT.GDT_CSUM) !== 0;
    if (sb.featureIncompat & INCOMPAT.CSUM_SEED) this.csumSeed = sb.checksumSeed;
    else if (mcsum || (sb.featureIncompat & INCOMPAT.EA_INODE)) {
      this.csumSeed = crc32cUpdate(0xffffffff, sb.uuid);
    } else this.csumSeed = 0;
    this.#descBytes = new Uint8Array(0);
    this.groups = [];
    this.descriptorLocations = [];
  }

  /**
   * Opens the file system on `source`. Throws {@linkcode CorruptImageError} or
   * {@linkcode UnsupportedFeatureError} with libext2fs's message in `compat`.
   */
  static open(source: Source, options: ExtVolumeOpenOptions = {}): ExtVolume {
    const sbBlock = options.superblock ?? 0;
    if (!Number.isSafeInteger(sbBlock) || sbBlock < 0) {
      throw new RangeError(`Superblock number must be a non-negative integer, found ${sbBlock}`);
    }
    if (sbBlock && !options.blockSize) {
      throw new CorruptImageError(
        "Cannot open ext file system: a backup superblock needs the block size",
        { format: "ext", structure: "superblock", compat: EXT2_MESSAGES.INVALID_ARGUMENT },
      );
    }
    const bsOpt = options.blockSize || undefined; // 0 means "not given", as in libext2fs
    if (bsOpt !== undefined && !(Number.isSafeInteger(bsOpt) && bsOpt > 0)) {
      throw new RangeError(`Block size must be a positive integer, found ${bsOpt}`);
    }
    const sbOffset = sbBlock ? sbBlock * bsOpt! : SUPERBLOCK_OFFSET;
    const sbBytes = new Uint8Array(SUPERBLOCK_SIZE);
    if (!readExact(source, sbOffset, sbBytes)) {
      throw shortRead("superblock", sbOffset, options.pastEndMessage);
    }
    const sb = parseExtSuperblock(sbBytes, {
      offset: sbOffset,
      ...(bsOpt !== undefined ? { expectedBlockSize: bsOpt } : {}),
    });
    const vol = new ExtVolume(source, sbBytes, sb, sbBlock);
    if (options.pastEndMessage) vol.#pastEnd = options.pastEndMessage;
    vol.#readDescriptors();
    return vol;
  }

  /** libext2fs's `ext2fs_descriptor_block_loc2(fs, groupBlock, i)`. */
  descriptorBlockLocation(groupBlock: number, i: number): number {
    const sb = this.superblock;
    const adjust = i === 0 && this.blockSize === 1024 && this.clusterRatio > 1 ? 1 : 0;
    if (!(sb.featureIncompat & INCOMPAT.META_BG) || i < sb.firstMetaBg) {
      return groupBlock + i + 1 + adjust;
    }
    const bg = this.descPerBlock * i;
    let hasSuper = bgHasSuper(sb, bg) ? 1 : 0;
    let ret = this.groupFirstBlock(bg);
    if (
      groupBlock !== sb.firstDataBlock &&
      ret + hasSuper + sb.blocksPerGroup < this.blocksCount
    ) {
      ret += sb.blocksPerGroup;
      hasSuper = bgHasSuper(sb, bg + 1) ? 1 : 0;
    }
    return ret + hasSuper + adjust;
  }

  /** First block of group `g`. */
  groupFirstBlock(g: number): number {
    return this.firstDataBlock + g * this.superblock.blocksPerGroup;
  }

  /** Last block of group `g` (the fs end for the last group). */
  groupLastBlock(g: number): number {
    return g === this.groupCount - 1
      ? this.blocksCount - 1
      : this.groupFirstBlock(g) + this.superblock.blocksPerGroup - 1;
  }

  /** True when group `g` carries a superblock backup. */
  groupHasSuper(g: number): boolean {
    return bgHasSuper(this.superblock, g);
  }

  #readDescriptors(): void {
    const sb = this.superblock;
    const bs = this.blockSize;
    const groupBlock = this.superblockBlock || sb.firstDataBlock;
    const zeroAdjust = groupBlock === 0 && bs === 1024 ? 1 : 0;
    let firstMetaBg = this.descBlocks;
    if (sb.featureIncompat & INCOMPAT.META_BG) firstMetaBg = Math.min(sb.firstMetaBg, firstMetaBg);
    const total = this.descBlocks * bs;
    if (total > MAX_DESCRIPTOR_BYTES && total <= this.source.size) {
      throw new LimitExceededError(
        `Cannot open ext file system: ${this.groupCount} block groups need ${total} bytes of descriptors, more than the cap of ${MAX_DESCRIPTOR_BYTES}`,
      );
    }
    if (total > this.source.size) {
      // Find the read libext2fs would fail on, without allocating for a hostile count.
      const start = groupBlock + zeroAdjust + 1;
      let failAt = start * bs;
      if (!firstMetaBg || start * bs + firstMetaBg * bs <= this.source.size) {
        failAt = this.source.size;
        for (let i = firstMetaBg; i < this.descBlocks; i++) {
          const off = this.descriptorBlockLocation(groupBlock, i) * bs;
          if (off + bs > this.source.size) {
            failAt = off;
            break;
          }
        }
      }
      throw shortRead("group descriptors", failAt, this.#pastEnd);
    }
    const bytes = new Uint8Array(total);
    const locs: number[] = [];
    if (firstMetaBg) {
      const start = groupBlock + zeroAdjust + 1;
      const off = start * bs;
      if (!readExact(this.source, off, bytes.subarray(0, firstMetaBg * bs))) {
        throw shortRead("group descriptors", off, this.#pastEnd);
      }
      for (let i = 0; i < firstMetaBg; i++) locs.push(start + i);
    }
    for (let i = firstMetaBg; i < this.descBlocks; i++) {
      const blk = this.descriptorBlockLocation(groupBlock, i);
      const off = blk * bs;
      if (!readExact(this.source, off, bytes.subarray(i * bs, (i + 1) * bs))) {
        throw shortRead("group descriptors", off, this.#pastEnd);
      }
      locs.push(blk);
    }
    this.#descBytes = bytes;
    const params: GroupDescChecksumParams = {
      kind: (sb.featureRoCompat & RO_COMPAT.METADATA_CSUM) ? "crc32c" : "crc16",
      uuid: sb.uuid,
      csumSeed: this.csumSeed,
      descSize: this.descSize,
    };
    const groups: ExtGroupDescriptor[] = [];
    const clear = this.superblockBlock > 1 && this.hasGroupChecksums;
    for (let g = 0; g < this.groupCount; g++) {
      const blk = Math.floor(g / this.descPerBlock);
      const off = blk * bs + (g % this.descPerBlock) * this.descSize;
      const d = parseExtGroupDescriptor(bytes, off, this.is64bit);
      if (this.hasGroupChecksums) {
        const raw = bytes.subarray(off, off + this.descSize);
        if (clear) {
          // ext2fs_open2 with a backup superblock: clear UNINIT flags, zero itable_unused,
          // and recompute the checksum in memory.
          d.flags &= ~(BG_FLAGS.BLOCK_UNINIT | BG_FLAGS.INODE_UNINIT);
          d.itableUnused = 0;
          d.checksumValid = true;
        } else {
          d.checksumValid = extGroupDescChecksum(raw, g, params) === d.checksum;
        }
      }
      groups.push(d);
    }
    (this as { groups: readonly ExtGroupDescriptor[] }).groups = groups;
    (this as { descriptorLocations: readonly number[] }).descriptorLocations = locs;
  }

  /** The 1024 on-disk bytes of the superblock that was used. */
  superblockBytes(): Uint8Array {
    return this.#sbBytes.slice();
  }

  /**
   * The `descBlocks * blockSize` raw descriptor blocks, gathered in order (meta_bg: from each
   * meta group's first group), as on disk.
   */
  descriptorBytes(): Uint8Array {
    return this.#descBytes.slice();
  }

  /**
   * Reads block `block` into `buf` (exactly blockSize bytes); false when the block lies past
   * the end of the source (libext2fs reports a short read).
   */
  readBlock(block: number, buf: Uint8Array): boolean {
    const off = block * this.blockSize;
    if (!Number.isSafeInteger(off)) return false;
    return readExact(this.source, off, buf.subarray(0, this.blockSize));
  }

  /** The context {@linkcode walkInodeBlocks} needs. */
  walkContext(): BlockWalkContext {
    return {
      blockSize: this.blockSize,
      blocksCount: this.blocksCount,
      firstDataBlock: this.firstDataBlock,
      hurd: this.superblock.creatorOs === EXT2_OS_HURD,
      readBlock: (b, buf) => this.readBlock(b, buf),
      pastEndMessage: (b) => this.#pastEnd(b * this.blockSize),
    };
  }

  /** Byte offset of inode `ino` (1-based) in the source, from its group's inode table. */
  inodeOffset(ino: number): number {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.superblock.inodesCount) {
      throw new RangeError(
        `Inode number must be in 1..${this.superblock.inodesCount}, found ${ino}`,
      );
    }
    const g = Math.floor((ino - 1) / this.inodesPerGroup);
    const idx = (ino - 1) % this.inodesPerGroup;
    const table = this.groups[g]!.inodeTable;
    if (table === 0) {
      throw new CorruptImageError(`Cannot read inode ${ino}: group ${g} has no inode table`, {
        format: "ext",
        structure: `group descriptor ${g}`,
        field: "bg_inode_table",
        compat: EXT2_MESSAGES.MISSING_INODE_TABLE,
      });
    }
    if (table < this.firstDataBlock || table + this.inodeBlocksPerGroup - 1 >= this.blocksCount) {
      throw new CorruptImageError(
        `Cannot read inode ${ino}: group ${g}'s inode table at block ${table} lies outside the file system`,
        {
          format: "ext",
          structure: `group descriptor ${g}`,
          field: "bg_inode_table",
          actual: String(table),
          compat: EXT2_MESSAGES.GDESC_BAD_INODE_TABLE,
        },
      );
    }
    return table * this.blockSize + idx * this.inodeSize;
  }

  /** The raw on-disk bytes of inode `ino` (inodeSize bytes). */
  readInodeBytes(ino: number): Uint8Array {
    const off = this.inodeOffset(ino);
    const buf = new Uint8Array(this.inodeSize);
    if (!readExact(this.source, off, buf)) throw shortRead(`inode ${ino}`, off, this.#pastEnd);
    return buf;
  }

  /** Reads and parses inode `ino` (1-based). */
  readInode(ino: number): ExtInode {
    return parseExtInode(this.readInodeBytes(ino), 0, this.inodeSize, this.is64bit);
  }

  /**
   * The blocks e2image copies (see {@linkcode selectE2imageBlocks}): sorted block extents, the
   * `-s` scramble set and the progress total.
   */
  e2imageSelection(options: E2imageSelectionOptions = {}): E2imageSelection {
    return selectE2imageBlocks(this, options);
  }

  #readBitmapBlock(blk: number, nbytes: number, what: string, compat: string): Uint8Array {
    const out = new Uint8Array(nbytes);
    const buf = new Uint8Array(this.blockSize);
    if (!this.readBlock(blk, buf)) {
      throw new CorruptImageError(
        `Cannot read ext ${what} at block ${blk}: the source ends first`,
        { format: "ext", structure: what, offset: blk * this.blockSize, compat },
      );
    }
    out.set(buf.subarray(0, Math.min(nbytes, this.blockSize)));
    return out;
  }

  /** Blocks that libext2fs marks in memory for BLOCK_UNINIT groups (mark_uninit_bg_group_blocks). */
  #uninitBlockMarks(): BlockExtent[] {
    if (this.#uninitMarks) return this.#uninitMarks;
    const sb = this.superblock;
    const marks: BlockExtent[] = [];
    const add = (start: number, count: number) => {
      if (count > 0 && start >= 0) marks.push({ start, count });
    };
    const metaBg = (sb.featureIncompat & INCOMPAT.META_BG) !== 0;
    const oldDescBlocks = metaBg ? sb.firstMetaBg : this.descBlocks + sb.reservedGdtBlocks;
    for (let g = 0; g < this.groupCount; g++) {
      const d = this.groups[g]!;
      if (!(d.flags & BG_FLAGS.BLOCK_UNINIT)) continue;
      // ext2fs_reserve_super_and_bgd via ext2fs_super_and_bgd_loc2
      let groupBlock = this.groupFirstBlock(g);
      if (groupBlock === 0 && this.blockSize === 1024) groupBlock = 1;
      const hasSuper = this.groupHasSuper(g);
      const superBlk = hasSuper ? groupBlock : 0;
      let oldDesc = 0, newDesc = 0;
      const mbSize = this.descPerBlock;
      if (!metaBg || Math.floor(g / mbSize) < sb.firstMetaBg) {
        if (hasSuper) oldDesc = groupBlock + 1;
      } else {
        const r = g % mbSize;
        if (r === 0 || r === 1 || r === mbSize - 1) newDesc = groupBlock + (hasSuper ? 1 : 0);
      }
      if (superBlk || g === 0) add(superBlk, 1);
      if (g === 0 && this.blockSize === 1024 && this.clusterRatio > 1) add(0, 1);
      if (oldDesc) {
        let n = oldDescBlocks;
        if (oldDesc + n >= this.blocksCount) n = this.blocksCount - oldDesc;
        add(oldDesc, n);
      }
      if (newDesc) add(newDesc, 1);
      if (d.inodeTable) add(d.inodeTable, this.inodeBlocksPerGroup);
      if (d.blockBitmap && d.blockBitmap < this.blocksCount) add(d.blockBitmap, 1);
      if (d.inodeBitmap && d.inodeBitmap < this.blocksCount) add(d.inodeBitmap, 1);
    }
    this.#uninitMarks = mergeBlockExtents(marks);
    return this.#uninitMarks;
  }

  /**
   * Group `group`'s block bitmap as libext2fs holds it in memory (clustersPerGroup/8 bytes):
   * zeros for a BLOCK_UNINIT group with a valid checksum (or a bitmap past the fs end), the
   * on-disk bytes otherwise, then the bits libext2fs sets for every BLOCK_UNINIT group's
   * superblock backup, descriptors, inode table and bitmaps.
   */
  blockBitmap(group: number): Uint8Array {
    const d = this.groups[group];
    if (!d) throw new RangeError(`Group must be in 0..${this.groupCount - 1}, found ${group}`);
    const nbytes = Math.floor(this.clustersPerGroup / 8);
    let blk = d.blockBitmap;
    if (
      (this.hasGroupChecksums && (d.flags & BG_FLAGS.BLOCK_UNINIT) && d.checksumValid) ||
      blk >= this.blocksCount
    ) blk = 0;
    const out = blk
      ? this.#readBitmapBlock(blk, nbytes, "block bitmap", "Can't read a block bitmap")
      : new Uint8Array(nbytes);
    const bits = this.clusterBits;
    const startC = Math.floor(this.firstDataBlock / this.clusterRatio);
    const lo = startC + group * this.clustersPerGroup; // first cluster of this group's bits
    const hi = lo + nbytes * 8; // exclusive
    const realEnd = startC + this.clustersPerGroup * this.groupCount; // exclusive
    // The marks are sorted, merged block extents: find the first that can reach this group.
    const marks = this.#uninitBlockMarks();
    const r = 2 ** bits;
    const loBlock = lo * r;
    let a = 0, b = marks.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      const e = marks[mid]!;
      if (e.start + e.count <= loBlock) a = mid + 1;
      else b = mid;
    }
    for (let i = a; i < marks.length; i++) {
      const e = marks[i]!;
      const c0 = Math.floor(e.start / r);
      if (c0 >= hi) break;
      const c1 = Math.floor((e.start + e.count - 1) / r);
      if (c0 < startC || c1 >= realEnd) continue; // libext2fs warns and marks nothing
      setBits(out, Math.max(c0, lo) - lo, Math.min(c1 + 1, hi) - lo);
    }
    return out;
  }

  /**
   * Group `group`'s inode bitmap as libext2fs holds it in memory (inodesPerGroup/8 bytes):
   * zeros for an INODE_UNINIT group with a valid checksum (or a bitmap past the fs end), the
   * on-disk bytes otherwise.
   */
  inodeBitmap(group: number): Uint8Array {
    const d = this.groups[group];
    if (!d) throw new RangeError(`Group must be in 0..${this.groupCount - 1}, found ${group}`);
    const nbytes = Math.floor(this.inodesPerGroup / 8);
    let blk = d.inodeBitmap;
    if (
      (this.hasGroupChecksums && (d.flags & BG_FLAGS.INODE_UNINIT) && d.checksumValid) ||
      blk >= this.blocksCount
    ) blk = 0;
    return blk
      ? this.#readBitmapBlock(blk, nbytes, "inode bitmap", "Can't read an inode bitmap")
      : new Uint8Array(nbytes);
  }
}
