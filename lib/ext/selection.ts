/**
 * Which blocks e2image copies into a raw (`-r`) or QCOW2 (`-Q`) image, computed exactly as
 * e2image 1.47's `write_raw_image_file` does: `mark_table_blocks`, then an inode scan that
 * marks EA blocks, every block of directories, symlinks, the journal, quota and orphan-file
 * inodes, and the map blocks (or, with `-a`, every block) of other files. The result is a
 * sorted block-extent list, the `-s` scramble set, and e2image's mark count (its progress
 * total). Memory follows metadata: marks are kept as runs, never as a device-sized bitmap.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { type BlockExtent, BlockSetBuilder } from "../_internal/extents.ts";
import { u16, u32 } from "../_internal/bytes.ts";
import { EXT2_MESSAGES, INCOMPAT } from "./superblock.ts";
import { BG_FLAGS } from "./group_desc.ts";
import { INO, INODE_FLAGS, parseExtInode, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "./inode.ts";
import { walkInodeBlocks } from "./block_map.ts";
import type { ExtVolume } from "./volume.ts";

/** Options of {@linkcode selectE2imageBlocks}. */
export interface E2imageSelectionOptions {
  /** e2image `-a`: every block of regular files too. */
  allData?: boolean;
  /** e2image `-s`: also compute the directory blocks to scramble. */
  scramble?: boolean;
  /** The output is a block device: full inode tables, even of INODE_UNINIT groups. */
  outputIsDevice?: boolean;
  /**
   * Receives each warning line libext2fs prints while marking (no trailing newline), e.g.
   * "Illegal block number passed to ext2fs_mark_block_bitmap #99999999 for in-use block map".
   */
  onWarning?: (line: string) => void;
}

/** The blocks e2image copies. */
export interface E2imageSelection {
  /** Selected blocks, sorted and merged, within [firstDataBlock, blocksCount). */
  blocks: BlockExtent[];
  /** Directory data blocks to scramble with `-s` (empty without it); a subset of blocks. */
  scrambleBlocks: BlockExtent[];
  /** e2image's `meta_blocks_count`: one per mark call, duplicates included (progress total). */
  markCount: number;
}

/** Inode buffer for the scan: at most this many bytes are read at once. */
const SCAN_BATCH = 4 << 20;

class Marker {
  readonly set = new BlockSetBuilder();
  #startC: number;
  #endC: number;
  #bits: number;
  #desc: string;
  #warn: (line: string) => void;

  constructor(vol: ExtVolume, desc: string, warn: (line: string) => void) {
    this.#bits = vol.clusterBits;
    this.#startC = Math.floor(vol.firstDataBlock / vol.clusterRatio);
    this.#endC = Math.floor((vol.blocksCount - 1) / vol.clusterRatio);
    this.#desc = desc;
    this.#warn = warn;
  }

  mark(start: number, count: number): void {
    const r = 2 ** this.#bits;
    const first = Math.floor(start / r), last = Math.floor((start + count - 1) / r);
    if (first >= this.#startC && last <= this.#endC) {
      this.set.addRange(first, last - first + 1);
      return;
    }
    for (let i = 0; i < count; i++) {
      const c = Math.floor((start + i) / r);
      if (c < this.#startC || c > this.#endC) {
        this.#warn(`${EXT2_MESSAGES.BAD_BLOCK_MARK} #${c} for ${this.#desc}`);
      } else this.set.add(c);
    }
  }

  /** Marks `count` blocks from a location past 2^53 (always out of range): warnings only. */
  markBig(start: bigint, count: number): void {
    for (let i = 0; i < count; i++) {
      this.#warn(
        `${EXT2_MESSAGES.BAD_BLOCK_MARK} #${
          (start + BigInt(i)) >> BigInt(this.#bits)
        } for ${this.#desc}`,
      );
    }
  }

  blocks(vol: ExtVolume): BlockExtent[] {
    const r = vol.clusterRatio;
    const out: BlockExtent[] = [];
    for (const e of this.set.build()) {
      const s = Math.max(e.start * r, vol.firstDataBlock);
      const end = Math.min((e.start + e.count) * r, vol.blocksCount);
      if (end > s) out.push({ start: s, count: end - s });
    }
    return out;
  }
}

function scanError(message: string, compat: string, context: string, offset?: number) {
  return new CorruptImageError(message, {
    format: "ext",
    structure: "inode scan",
    ...(offset !== undefined ? { offset } : {}),
    compat,
    context,
  });
}

/**
 * Computes e2image's block selection for `vol` (see the module doc). When the volume was
 * opened with a backup superblock, that superblock and its descriptor blocks are marked too,
 * as `e2image -b` does.
 *
 * Throws {@linkcode CorruptImageError} where e2image stops with an error; `details.compat` is
 * libext2fs's message and `details.context` e2image's phrase ("while opening inode scan",
 * "while getting next inode", "while iterating over inode N").
 *
 * @example
 * ```ts ignore
 * import { ExtVolume, selectE2imageBlocks } from "./mod.ts";
 * import { openSource } from "../io/mod.ts";
 * const sel = selectE2imageBlocks(ExtVolume.open(openSource("fs.img")));
 * console.log(sel.blocks.length, sel.markCount);
 * ```
 */
export function selectE2imageBlocks(
  vol: ExtVolume,
  options: E2imageSelectionOptions = {},
): E2imageSelection {
  const warn = options.onWarning ?? (() => {});
  const meta = new Marker(vol, "in-use block map", warn);
  const scr = options.scramble ? new Marker(vol, "scramble block map", warn) : undefined;
  const isDev = options.outputIsDevice ?? false;
  const sb = vol.superblock;
  let count = 0;
  const mark = (b: number, n = 1) => {
    meta.mark(b, n);
    count += n;
  };

  if (vol.superblockBlock) {
    mark(vol.superblockBlock);
    for (let j = 0; j < vol.descBlocks; j++) {
      meta.mark(vol.descriptorBlockLocation(vol.superblockBlock, j), 1);
    }
    count += vol.descBlocks;
  }
  // mark_table_blocks
  mark(sb.firstDataBlock);
  for (let j = 0; j < vol.descBlocks; j++) {
    meta.mark(vol.descriptorBlockLocation(sb.firstDataBlock, j), 1);
  }
  count += vol.descBlocks;
  if (sb.featureIncompat & INCOMPAT.MMP) mark(sb.mmpBlock);
  // A descriptor location past 2^53 (a corrupt _hi half) only warns, with exact digits.
  const markLoc = (loc: number, exact: bigint | undefined, blocks: number) => {
    if (exact !== undefined && exact > BigInt(Number.MAX_SAFE_INTEGER)) {
      meta.markBig(exact, blocks);
      count += blocks;
    } else mark(loc, blocks);
  };
  for (let g = 0; g < vol.groupCount; g++) {
    const d = vol.groups[g]!;
    if ((isDev || !(d.flags & BG_FLAGS.INODE_UNINIT)) && d.inodeTable) {
      let end = vol.inodeBlocksPerGroup;
      if (!isDev && vol.hasGroupChecksums) {
        end = (end - Math.floor(d.itableUnused / vol.inodesPerBlock)) >>> 0;
        // A hostile itable_unused makes e2image's unsigned count wrap to ~2^32 blocks (hours
        // of warnings); mark only the part inside the file system then.
        if (end > vol.inodeBlocksPerGroup) end = Math.max(0, vol.blocksCount - d.inodeTable);
      }
      if (end > 0) markLoc(d.inodeTable, d.exact?.inodeTable, end);
    }
    if (!(d.flags & BG_FLAGS.BLOCK_UNINIT) && d.blockBitmap) {
      markLoc(d.blockBitmap, d.exact?.blockBitmap, 1);
    }
    if (!(d.flags & BG_FLAGS.INODE_UNINIT) && d.inodeBitmap) {
      markLoc(d.inodeBitmap, d.exact?.inodeBitmap, 1);
    }
  }

  // The inode scan (ext2fs_open_inode_scan / ext2fs_get_next_inode).
  const bs = vol.blockSize;
  const isz = vol.inodeSize;
  const ipg = vol.inodesPerGroup;
  const wide = vol.is64bit;
  const special = new Set<number>([INO.USR_QUOTA, INO.GRP_QUOTA]);
  for (const n of [sb.journalInum, sb.prjQuotaInum, sb.orphanFileInum]) if (n) special.add(n);
  const ctx = vol.walkContext();
  const hurd = ctx.hurd;
  const allData = options.allData ?? false;
  // Whole 8-block chunks per batch, so a short read ends where libext2fs's would.
  const batchInodes = Math.max(1, Math.floor(Math.max(8 * bs, SCAN_BATCH) / (8 * bs))) * 8 * bs /
    isz;
  const bad = readBadBlocks(vol);
  const buf = new Uint8Array(Math.min(batchInodes, ipg) * isz);
  const h16 = new Uint16Array(buf.buffer);
  const h32 = new Uint32Array(buf.buffer);
  const picks = new Int32Array(Math.min(batchInodes, ipg));
  const specials = Int32Array.from(special);

  for (let g = 0; g < vol.groupCount; g++) {
    const d = vol.groups[g]!;
    const table = d.inodeTable;
    const phase = g === 0 ? "while opening inode scan" : "while getting next inode";
    if (
      table &&
      (table < vol.firstDataBlock || table + vol.inodeBlocksPerGroup - 1 >= vol.blocksCount)
    ) {
      throw scanError(
        `Cannot scan ext inodes: group ${g}'s inode table at block ${table} lies outside the file system`,
        EXT2_MESSAGES.GDESC_BAD_INODE_TABLE,
        phase,
      );
    }
    let left = ipg;
    if (vol.hasGroupChecksums) {
      left = left > d.itableUnused ? left - d.itableUnused : 0;
      if (d.flags & BG_FLAGS.INODE_UNINIT) continue;
    }
    if (left === 0) continue;
    if (table === 0) {
      throw scanError(
        `Cannot scan ext inodes: group ${g} has no inode table`,
        EXT2_MESSAGES.MISSING_INODE_TABLE,
        "while getting next inode",
      );
    }
    for (let first = 0; first < left; first += batchInodes) {
      let n = Math.min(batchInodes, left - first);
      const off = table * bs + first * isz;
      let readFailed = false;
      const avail = Math.max(0, vol.source.size - off);
      if (avail < n * isz) {
        // libext2fs reads the table 8 blocks at a time and stops at the first short read.
        const chunkBytes = 8 * bs;
        n = Math.min(n, Math.floor(Math.floor(avail / chunkBytes) * chunkBytes / isz));
        readFailed = true;
      }
      const chunk = buf.subarray(0, n * isz);
      if (n > 0 && !readAll(vol, off, chunk)) {
        throw scanError(
          `Cannot scan ext inodes: reading group ${g}'s inode table failed at byte 0x${
            off.toString(16)
          }`,
          EXT2_MESSAGES.NEXT_INODE_READ,
          "while getting next inode",
          off,
        );
      }
      const firstIno = g * ipg + first + 1;
      const picked = LITTLE_ENDIAN
        ? pickInodes(h16, h32, n, isz, firstIno, allData, wide, hurd, specials, picks)
        : n;
      for (let k = 0; k < picked; k++) {
        const i = LITTLE_ENDIAN ? picks[k]! : k;
        const o = i * isz;
        if (u16(chunk, o + 0x1a) === 0) continue; // i_links_count
        if (bad.size && bad.has(table + Math.floor((first + i) * isz / bs))) continue;
        const ino = g * ipg + first + i + 1;
        const acl = u32(chunk, o + 0x68) + (wide ? u16(chunk, o + 0x76) * 0x100000000 : 0);
        if (acl) mark(acl);
        const mode = u16(chunk, o);
        const fmt = mode & S_IFMT;
        // ext2fs_inode_has_valid_blocks2, inline on the raw bytes.
        if (fmt !== S_IFDIR && fmt !== S_IFREG && fmt !== S_IFLNK) continue;
        const iflags = u32(chunk, o + 0x20);
        if (fmt === S_IFLNK) {
          if (acl === 0) {
            if (u32(chunk, o + 0x1c) === 0) continue; // i_blocks
          } else {
            const size = u32(chunk, o + 4);
            if (!(size >= 60 || (size > 4 && u32(chunk, o + 0x2c) === 0))) continue;
          }
        }
        if (iflags & INODE_FLAGS.INLINE_DATA) continue;
        const isDir = fmt === S_IFDIR;
        let err;
        if (isDir || fmt === S_IFLNK || special.has(ino)) {
          const inode = parseExtInode(chunk, o, 128, wide);
          err = walkInodeBlocks(inode, ctx, (start, n, blockcnt) => {
            mark(start, n);
            if (scr && isDir && blockcnt >= 0) scr.mark(start, n);
          });
        } else {
          const extents = (iflags & INODE_FLAGS.EXTENTS) !== 0;
          if (!allData) {
            // e2image iterates only files with extents or IND/DIND/TIND pointers.
            if (
              !extents && u32(chunk, o + 0x28 + 48) === 0 && u32(chunk, o + 0x28 + 52) === 0 &&
              u32(chunk, o + 0x28 + 56) === 0
            ) continue;
            // A depth-0 (or unreadable) extent root reports no block with a negative count and
            // reads nothing, so its walk marks nothing and cannot fail; only a HURD translator
            // block would be marked.
            if (
              extents && !(hurd && u32(chunk, o + 0x24) !== 0) &&
              (u16(chunk, o + 0x28 + 6) === 0 || u16(chunk, o + 0x28) !== 0xf30a)
            ) continue;
          }
          const inode = parseExtInode(chunk, o, 128, wide);
          err = walkInodeBlocks(inode, ctx, (start, n, blockcnt) => {
            if (blockcnt < 0 || allData) mark(start, n);
          });
        }
        if (err) {
          throw new CorruptImageError(
            `Cannot walk the blocks of ext inode ${ino}: ${err.detail}`,
            {
              format: "ext",
              structure: `inode ${ino}`,
              compat: err.compat,
              context: `while iterating over inode ${ino}`,
            },
          );
        }
      }
      if (readFailed) {
        throw scanError(
          `Cannot scan ext inodes: the source ends inside group ${g}'s inode table (byte 0x${
            (off + n * isz).toString(16)
          })`,
          EXT2_MESSAGES.NEXT_INODE_READ,
          "while getting next inode",
          off + n * isz,
        );
      }
    }
  }
  return {
    blocks: meta.blocks(vol),
    scrambleBlocks: scr ? scr.blocks(vol) : [],
    markCount: count,
  };
}

/** Whether typed-array views read the on-disk little-endian fields directly. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * The scan's pre-filter: stores in `out` the indexes of the `n` inodes (of `isz` bytes, the
 * first numbered `firstIno`) that the full check may act on, and returns how many. Skipped are
 * only inodes that check would skip too: unused ones (no links) and, without an EA block, those
 * that are not directories, regular files or symlinks, and regular files (other than the special
 * inodes) whose walk marks nothing: depth-0 extent roots, or no indirect pointers, when only
 * metadata is copied. A small function over word views, so V8 optimizes it at once: it is the
 * loop that runs for every inode.
 */
function pickInodes(
  h16: Uint16Array,
  h32: Uint32Array,
  n: number,
  isz: number,
  firstIno: number,
  allData: boolean,
  wide: boolean,
  hurd: boolean,
  specials: Int32Array,
  out: Int32Array,
): number {
  let k = 0;
  const w16 = isz >> 1, w32 = isz >> 2;
  for (let i = 0, a = 0, b = 0; i < n; i++, a += w16, b += w32) {
    if (h16[a + 13] === 0) continue; // i_links_count (0x1a)
    if (h32[b + 26] !== 0 || (wide && h16[a + 59] !== 0)) { // i_file_acl (0x68, hi 0x76)
      out[k++] = i;
      continue;
    }
    const fmt = h16[a]! & S_IFMT;
    if (fmt !== S_IFREG) {
      if (fmt === S_IFDIR || fmt === S_IFLNK) out[k++] = i;
      continue;
    }
    if (allData) {
      out[k++] = i;
      continue;
    }
    let plain: boolean;
    const iflags = h32[b + 8]!; // i_flags (0x20)
    if (iflags & INODE_FLAGS.INLINE_DATA) plain = true;
    else if (iflags & INODE_FLAGS.EXTENTS) {
      // eh_depth (0x28 + 6) 0, or no extent magic (0x28), and no HURD translator (0x24).
      plain = (h16[a + 23] === 0 || h16[a + 20] !== 0xf30a) && !(hurd && h32[b + 9] !== 0);
    } else plain = h32[b + 22] === 0 && h32[b + 23] === 0 && h32[b + 24] === 0; // i_block[12..14]
    if (plain) {
      const ino = firstIno + i;
      for (let j = 0; j < specials.length; j++) if (specials[j] === ino) plain = false;
      if (plain) continue;
    }
    out[k++] = i;
  }
  return k;
}

/**
 * The bad-block list of inode 1 (libext2fs's `ext2fs_read_bb_inode`, as the inode scan loads
 * it): its data blocks inside the fs; empty when inode 1 cannot be read or walked. Inodes in an
 * inode table block on this list are skipped by the scan.
 */
function readBadBlocks(vol: ExtVolume): Set<number> {
  const bad = new Set<number>();
  let inode;
  try {
    inode = vol.readInode(1);
  } catch {
    return bad;
  }
  if (inode.flags & INODE_FLAGS.INLINE_DATA) return bad;
  const limit = Math.max(vol.blocksCount, 16);
  const err = walkInodeBlocks(inode, vol.walkContext(), (start, n, blockcnt) => {
    if (blockcnt < 0) return;
    for (let i = 0; i < n && bad.size < limit; i++) {
      const b = start + i;
      if (b >= vol.firstDataBlock && b < vol.blocksCount) bad.add(b);
    }
  });
  if (err) bad.clear();
  return bad;
}

function readAll(vol: ExtVolume, offset: number, buf: Uint8Array): boolean {
  const src = vol.source;
  if (offset + buf.length > src.size) return false;
  let done = 0;
  while (done < buf.length) {
    const n = src.readAt(offset + done, buf.subarray(done));
    if (n <= 0) return false;
    done += n;
  }
  return true;
}
