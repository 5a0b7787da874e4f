/**
 * Walks the blocks an inode owns, exactly as libext2fs's `ext2fs_block_iterate3` reports them
 * in read-only mode: extent trees (index blocks once, with block count -1; leaf extents block
 * by block, including libext2fs's quirks with overlapping extents) and classic
 * IND/DIND/TIND maps (the map blocks with counts -1/-2/-3, then the data blocks), plus the
 * HURD translator block (-4). Errors follow libext2fs too: a corrupt extent root is silently
 * ignored, a corrupt child node ends the walk with an error, and an error inside an indirect
 * map is forgotten when a later map block reads fine.
 *
 * @module
 */
import { LimitExceededError } from "../errors.ts";
import { u16, u32 } from "../_internal/bytes.ts";
import { EXT2_MESSAGES } from "./superblock.ts";
import type { ExtInode } from "./inode.ts";
import { INODE_FLAGS } from "./inode.ts";

/** Block count reported for an IND block or an extent tree node. */
export const BLOCK_COUNT_IND: number = -1;
/** Block count reported for a DIND block. */
export const BLOCK_COUNT_DIND: number = -2;
/** Block count reported for a TIND block. */
export const BLOCK_COUNT_TIND: number = -3;
/** Block count reported for a HURD translator block. */
export const BLOCK_COUNT_TRANSLATOR: number = -4;

/**
 * Deepest extent tree level walked; descending further ends the walk as "Corrupt extent
 * header" (ext4 allows 5; libext2fs would follow a corrupt root's depth up to 65535 levels).
 */
export const MAX_EXTENT_DEPTH: number = 32;

/** What {@linkcode walkInodeBlocks} needs from the file system. */
export interface BlockWalkContext {
  /** Block size in bytes. */
  blockSize: number;
  /** s_blocks_count. */
  blocksCount: number;
  /** s_first_data_block. */
  firstDataBlock: number;
  /** True when s_creator_os is HURD (translator blocks are reported). */
  hurd: boolean;
  /**
   * Reads block `block` into `buf` (blockSize bytes); returns false when the block lies past
   * the end of the source (libext2fs's short read).
   */
  readBlock(block: number, buf: Uint8Array): boolean;
  /**
   * libext2fs's message when {@linkcode BlockWalkContext.readBlock} returns false for `block`;
   * default "Attempt to read block from filesystem resulted in short read".
   */
  pastEndMessage?: (block: number) => string;
  /**
   * Cap on extent tree blocks read for one inode (hostile DAG-shaped trees); default: the
   * inode's i_blocks in fs blocks, at least 2^20, at most the fs block count.
   */
  maxTreeBlocks?: number;
}

/**
 * Called for `count` consecutive physical blocks from `start`; `blockcnt` is the logical block
 * number of the first (≥ 0, data) or a negative BLOCK_COUNT_* (metadata, count 1).
 */
export type BlockVisitor = (start: number, count: number, blockcnt: number) => void;

/** A failed walk: libext2fs's message (`compat`) and what the walk was doing. */
export interface BlockWalkError {
  /** libext2fs's error message, e.g. "Corrupt extent header". */
  compat: string;
  /** Human detail with the byte offset when known. */
  detail: string;
  /** Absolute byte offset of the offending structure, when known. */
  offset?: number;
}

/**
 * How many tree or map blocks one inode's walk may read: a valid inode's tree and map blocks
 * are counted in its i_blocks (512-byte units), so that many plus slack; but at least enough to
 * scan 2^26 entries (i_blocks may be wrong, or wrapped on a huge file), and never more than the
 * fs has blocks. Shared children in a hostile tree or map (a DAG) would otherwise mean
 * billions of reads.
 */
function mapReadCap(ctx: BlockWalkContext, blocksLo: number, entriesPerBlock: number): number {
  const owned = Math.floor(blocksLo / (ctx.blockSize / 512)) + 16;
  const floor = Math.floor(2 ** 26 / Math.max(1, entriesPerBlock));
  return Math.min(Math.max(ctx.blocksCount, 16), Math.max(owned, floor));
}

interface PathLevel {
  buf: Uint8Array;
  entries: number;
  left: number;
  curr: number; // entry index, -1 = none
  visitNum: number;
  blk: number;
  endBlk: number;
}

interface Extent {
  pblk: number;
  lblk: number;
  len: number;
  leaf: boolean;
  uninit: boolean;
  secondVisit: boolean;
}

function headerOk(b: Uint8Array, size: number): boolean {
  if (u16(b, 0) !== 0xf30a) return false;
  const entries = u16(b, 2), max = u16(b, 4);
  if (entries > max) return false;
  const emax = Math.floor((size - 12) / 12);
  return !(max > emax || max < emax - 2);
}

class ExtentHandle {
  #ctx: BlockWalkContext;
  #path: PathLevel[] = [];
  #level = 0;
  #maxDepth: number;
  #reads = 0;
  #maxReads: number;

  constructor(
    ctx: BlockWalkContext,
    root: Uint8Array,
    sizeLo: number,
    maxDepth: number,
    blocksLo: number,
  ) {
    this.#ctx = ctx;
    this.#maxDepth = maxDepth;
    this.#maxReads = ctx.maxTreeBlocks ??
      mapReadCap(ctx, blocksLo, Math.floor((ctx.blockSize - 12) / 12));
    const entries = u16(root, 2);
    this.#path.push({
      buf: root,
      entries,
      left: entries,
      curr: -1,
      visitNum: 1,
      blk: 0,
      endBlk: Math.floor((sizeLo + ctx.blockSize - 1) / ctx.blockSize),
    });
  }

  /** EXT2_EXTENT_ROOT then NEXT_SIB. Returns the extent or an error message string. */
  root(): Extent | string {
    this.#level = 0;
    const p = this.#path[0]!;
    p.left = p.entries;
    p.curr = -1;
    return this.#nextSib(p);
  }

  #nextSib(p: PathLevel): Extent | string {
    if (p.left <= 0) return "NO_NEXT";
    p.curr = p.curr < 0 ? 0 : p.curr + 1;
    p.left--;
    p.visitNum = 0;
    return this.#extent(p);
  }

  #extent(p: PathLevel): Extent {
    const o = 12 + 12 * p.curr;
    const b = p.buf;
    if (this.#level === this.#maxDepth) {
      let len = u16(b, o + 4);
      let uninit = false;
      if (len > 32768) {
        len -= 32768;
        uninit = true;
      }
      return {
        pblk: u32(b, o + 8) + u16(b, o + 6) * 0x100000000,
        lblk: u32(b, o),
        len,
        leaf: true,
        uninit,
        secondVisit: p.visitNum !== 0,
      };
    }
    const lblk = u32(b, o);
    const end = p.left > 0 ? u32(b, o + 12) : p.endBlk;
    return {
      pblk: u32(b, o + 4) + u16(b, o + 8) * 0x100000000,
      lblk,
      len: (end - lblk) >>> 0,
      leaf: false,
      uninit: false,
      secondVisit: p.visitNum !== 0,
    };
  }

  /** EXT2_EXTENT_NEXT. Returns the extent, "NO_NEXT", or an error message. */
  next(): Extent | string {
    const p = this.#path[this.#level]!;
    if (this.#level < this.#maxDepth) {
      if (p.visitNum === 0) {
        p.visitNum++;
        return this.#down(p);
      }
      if (p.left > 0) return this.#nextSib(p);
      if (this.#level > 0) return this.#up();
      return "NO_NEXT";
    }
    if (p.left > 0) return this.#nextSib(p);
    if (this.#level > 0) return this.#up();
    return "NO_NEXT";
  }

  #up(): Extent {
    this.#level--;
    return this.#extent(this.#path[this.#level]!);
  }

  #down(p: PathLevel): Extent | string {
    if (p.curr < 0 || this.#level >= this.#maxDepth) return EXT2_MESSAGES.EXTENT_NO_DOWN;
    const o = 12 + 12 * p.curr;
    const blk = u32(p.buf, o + 4) + u16(p.buf, o + 8) * 0x100000000;
    for (let l = this.#level; l > 0; l--) {
      if (this.#path[l]!.blk === blk) return EXT2_MESSAGES.EXTENT_CYCLE;
    }
    if (++this.#reads > this.#maxReads) return EXT2_MESSAGES.EXTENT_CYCLE;
    if (this.#level + 1 > MAX_EXTENT_DEPTH) return EXT2_MESSAGES.EXTENT_HEADER_BAD;
    let np = this.#path[this.#level + 1];
    if (!np) {
      np = {
        buf: new Uint8Array(0),
        entries: 0,
        left: 0,
        curr: -1,
        visitNum: 0,
        blk: 0,
        endBlk: 0,
      };
      this.#path.push(np);
    }
    if (np.buf.length !== this.#ctx.blockSize) np.buf = new Uint8Array(this.#ctx.blockSize);
    np.blk = blk;
    if (!this.#ctx.readBlock(blk, np.buf)) {
      return this.#ctx.pastEndMessage?.(blk) ?? EXT2_MESSAGES.SHORT_READ;
    }
    if (!headerOk(np.buf, this.#ctx.blockSize)) return EXT2_MESSAGES.EXTENT_HEADER_BAD;
    this.#level++;
    np.entries = np.left = u16(np.buf, 2);
    if (np.left <= 0) return EXT2_MESSAGES.EXTENT_NO_DOWN;
    np.endBlk = p.left > 0 ? u32(p.buf, o + 12) : p.endBlk;
    np.curr = 0;
    np.left = np.entries - 1;
    np.visitNum = 0;
    return this.#extent(np);
  }
}

function walkExtents(
  inode: ExtInode,
  ctx: BlockWalkContext,
  visit: BlockVisitor,
): BlockWalkError | null {
  const root = inode.blockBytes;
  // ext2fs_extent_open2: an all-zero i_block is an empty tree; a bad root header is an error
  // that ext2fs_block_iterate3 drops (goto abort_exit without BLOCK_ERROR).
  if (root.every((x) => x === 0)) return null;
  if (!headerOk(root, 60)) return null;
  const depth = u16(root, 6);
  if (depth === 0) {
    // The root is the only (leaf) node: the same walk as below without a handle. Skipping an
    // extent also skips the one after it (libext2fs had already fetched it).
    const n = u16(root, 2);
    let blockcnt = 0;
    for (let i = 0; i < n;) {
      const o = 12 + 12 * i;
      let len = u16(root, o + 4);
      if (len > 32768) len -= 32768;
      const lblk = u32(root, o);
      if (lblk + len <= blockcnt) {
        i += 2;
        continue;
      }
      if (lblk > blockcnt) blockcnt = lblk;
      const blk = u32(root, o + 8) + u16(root, o + 6) * 0x100000000 + (blockcnt - lblk);
      if (len > 0) visit(blk, len, lblk);
      blockcnt = lblk + len;
      i++;
    }
    return null;
  }
  const h = new ExtentHandle(ctx, root, inode.sizeLo, depth, inode.blocksLo);
  let blockcnt = 0;
  let op: "root" | "next" | "current" = "root";
  let extent: Extent | undefined;
  for (;;) {
    if (op !== "current" || extent === undefined) {
      const r = op === "root" ? h.root() : h.next();
      if (typeof r === "string") {
        if (r === "NO_NEXT") return null;
        return { compat: r, detail: r };
      }
      extent = r;
    }
    op = "next";
    if (!extent.leaf) {
      if (!extent.secondVisit) visit(extent.pblk, 1, BLOCK_COUNT_IND);
      continue;
    }
    // libext2fs fetches the next extent before handling this one; skipping this one (it lies
    // wholly before blockcnt) therefore also skips the one fetched.
    const next = h.next();
    if (extent.lblk + extent.len <= blockcnt) continue;
    if (extent.lblk > blockcnt) blockcnt = extent.lblk;
    const blk = extent.pblk + (blockcnt - extent.lblk);
    if (extent.len > 0) visit(blk, extent.len, extent.lblk);
    blockcnt = extent.lblk + extent.len;
    if (typeof next !== "string") {
      extent = next;
      op = "current";
    }
  }
}

interface IndState {
  errcode: string | null;
  bcount: number;
}

const ERROR = 1;

/**
 * Reports every block of `inode` to `visit`, in libext2fs order. Returns null on success or
 * the error libext2fs's iterator would return (e2image then stops with "while iterating over
 * inode N").
 *
 * @example
 * ```ts
 * import { walkInodeBlocks } from "./block_map.ts";
 * import { parseExtInode } from "./inode.ts";
 * const raw = new Uint8Array(128);
 * raw[0x28] = 9; // i_block[0] = 9
 * const seen: number[] = [];
 * walkInodeBlocks(parseExtInode(raw, 0, 128, false), {
 *   blockSize: 1024, blocksCount: 100, firstDataBlock: 1, hurd: false,
 *   readBlock: () => false,
 * }, (b) => seen.push(b));
 * console.assert(seen[0] === 9);
 * ```
 */
export function walkInodeBlocks(
  inode: ExtInode,
  ctx: BlockWalkContext,
  visit: BlockVisitor,
): BlockWalkError | null {
  if (ctx.hurd && inode.osd1 !== 0) visit(inode.osd1, 1, BLOCK_COUNT_TRANSLATOR);
  if (inode.flags & INODE_FLAGS.EXTENTS) return walkExtents(inode, ctx, visit);
  const limit = ctx.blockSize >>> 2;
  const st: IndState = { errcode: null, bcount: 0 };
  const bufs = [
    new Uint8Array(ctx.blockSize),
    new Uint8Array(ctx.blockSize),
    new Uint8Array(ctx.blockSize),
  ];
  let ret = 0;
  for (let i = 0; i < 12; i++, st.bcount++) {
    const b = inode.block[i]!;
    if (b) visit(b, 1, st.bcount);
  }
  const check = (blk: number, msg: string): boolean => {
    if (blk >= ctx.blocksCount || blk < ctx.firstDataBlock) {
      st.errcode = msg;
      return false;
    }
    return true;
  };
  // Valid maps are counted in i_blocks; shared map blocks (a hostile TIND whose entries all
  // name one DIND, and so on) could otherwise mean 2^28 reads.
  const maxReads = ctx.maxTreeBlocks ?? mapReadCap(ctx, inode.blocksLo, limit);
  let reads = 0;
  const read = (blk: number, buf: Uint8Array): boolean => {
    if (++reads > maxReads) {
      throw new LimitExceededError(
        `Cannot walk an ext block map: more than ${maxReads} indirect blocks for one inode (shared map blocks)`,
      );
    }
    if (!ctx.readBlock(blk, buf)) {
      st.errcode = ctx.pastEndMessage?.(blk) ?? EXT2_MESSAGES.SHORT_READ;
      return false;
    }
    st.errcode = null;
    return true;
  };
  const ind = (blk: number): number => {
    visit(blk, 1, BLOCK_COUNT_IND);
    if (!check(blk, EXT2_MESSAGES.BAD_IND_BLOCK)) return ERROR;
    const buf = bufs[0]!;
    if (!read(blk, buf)) return ERROR;
    let runStart = 0, runLen = 0, runCnt = 0;
    for (let i = 0; i < limit; i++, st.bcount++) {
      const e = u32(buf, 4 * i);
      if (e === 0) continue;
      if (runLen > 0 && e === runStart + runLen && st.bcount === runCnt + runLen) runLen++;
      else {
        if (runLen > 0) visit(runStart, runLen, runCnt);
        runStart = e;
        runLen = 1;
        runCnt = st.bcount;
      }
    }
    if (runLen > 0) visit(runStart, runLen, runCnt);
    return 0;
  };
  const dind = (blk: number): number => {
    visit(blk, 1, BLOCK_COUNT_DIND);
    if (!check(blk, EXT2_MESSAGES.BAD_DIND_BLOCK)) return ERROR;
    const buf = bufs[1]!;
    if (!read(blk, buf)) return ERROR;
    let r = 0;
    for (let i = 0; i < limit; i++) {
      const e = u32(buf, 4 * i);
      if (e === 0) {
        st.bcount += limit;
        continue;
      }
      if (ind(e) & ERROR) {
        r |= ERROR;
        break;
      }
    }
    return r;
  };
  const tind = (blk: number): number => {
    visit(blk, 1, BLOCK_COUNT_TIND);
    if (!check(blk, EXT2_MESSAGES.BAD_TIND_BLOCK)) return ERROR;
    const buf = bufs[2]!;
    if (!read(blk, buf)) return ERROR;
    let r = 0;
    for (let i = 0; i < limit; i++) {
      const e = u32(buf, 4 * i);
      if (e === 0) {
        st.bcount += limit * limit;
        continue;
      }
      if (dind(e) & ERROR) {
        r |= ERROR;
        break;
      }
    }
    return r;
  };
  if (inode.block[12]) ret |= ind(inode.block[12]!);
  else st.bcount += limit;
  if (inode.block[13]) ret |= dind(inode.block[13]!);
  else st.bcount += limit * limit;
  if (inode.block[14]) ret |= tind(inode.block[14]!);
  if (ret & ERROR && st.errcode !== null) {
    return { compat: st.errcode, detail: st.errcode };
  }
  return null;
}
