/**
 * The one walk behind {@linkcode auditExt} and {@linkcode scrubExt}: it visits every place an
 * ext image can hold identifying content (superblock label and mount path, directory entries
 * and their slack, inline data, xattrs, symlink targets, the journal, deleted inodes, file
 * data) and, in audit mode, records a finding; in scrub mode it also rewrites the bytes and
 * fixes every checksum the change breaks. Sharing the walk guarantees that what the audit
 * looks at is exactly what the scrub cleans.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import type { Source } from "../io/types.ts";
import { isZero, put16, put32be, u16, u32, u32be } from "../_internal/bytes.ts";
import {
  type FindingCollector,
  looksScrambled,
  printableRun,
  type PrivacyWriter,
  scrambledName,
} from "../_internal/privacy.ts";
import { COMPAT, INCOMPAT, RO_COMPAT } from "./superblock.ts";
import { BG_FLAGS } from "./group_desc.ts";
import {
  type ExtInode,
  INODE_FLAGS,
  inodeHasValidBlocks,
  parseExtInode,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from "./inode.ts";
import { walkInodeBlocks } from "./block_map.ts";
import { type BlockExtent, mergeBlockExtents } from "../_internal/extents.ts";
import type { ExtVolume } from "./volume.ts";
import {
  DIRENT_TAIL_SIZE,
  hasDirentTail,
  JBD2_MAGIC,
  setDirBlockChecksum,
  setInodeChecksum,
  setJournalSuperblockChecksum,
  setMmpChecksum,
  setSuperblockChecksum,
  setXattrBlockChecksum,
  writeDirentTail,
  xattrBlockHash,
  xattrEntryHash,
} from "./_privacy_csum.ts";

export type { PrivacyWriter };

/** Options of the ext privacy walk. */
export interface ExtPrivacyWalkOptions {
  /** Scrub: also zero the data blocks of regular files (default true). */
  wipeData?: boolean;
  /**
   * Also read (audit) and zero (scrub) the blocks the block bitmaps mark free (default false:
   * on a large sparse metadata image that reads every hole).
   */
  freeSpace?: boolean;
}

/** What a scrub changed, per kind, plus the repairs it made. */
export interface ExtScrubCounts {
  /** Directories whose htree index was turned into a linear directory. */
  htreeConverted: number;
  /** Names that could not get a unique scrambled name (more names of one length than 26^len). */
  nameCollisions: number;
  /** Blocks (or inode-table runs) written back. */
  writes: number;
}

const MAX_RUN_BYTES = 1 << 20;
const DEC = new TextDecoder("utf-8", { fatal: false });
const XATTR_MAGIC = 0xea020000;
/** Name indexes whose names and values are user content: user., trusted. */
const USER_XATTR_INDEXES = new Set([1, 4]);
const XATTR_INDEX_SYSTEM = 7;
const X = 0x78; // 'x', the filler of scrubbed symlink targets

interface BlockRef {
  /** Logical block number. */
  lblk: number;
  /** Physical block number. */
  pblk: number;
}

/** Per-directory scrambled-name counters (one counter per name length). */
class DirNames {
  #next = new Map<number, number>();
  collisions = 0;
  next(len: number): string {
    const id = this.#next.get(len) ?? 0;
    this.#next.set(len, id + 1);
    if (len < 8 && id >= 26 ** len) this.collisions++;
    return scrambledName(id, len);
  }
}

/** The walk; `writer` null means audit only. */
export class ExtPrivacyWalk {
  readonly #vol: ExtVolume;
  readonly #src: Source;
  readonly #out: PrivacyWriter | null;
  readonly #find: FindingCollector;
  readonly #bs: number;
  readonly #csum: boolean;
  readonly #seed: number;
  readonly #wipeData: boolean;
  readonly #freeSpace: boolean;
  readonly #doneXattrBlocks = new Set<number>();
  readonly #pendingData: BlockExtent[] = [];
  /** Counters of the repairs made. */
  readonly counts: ExtScrubCounts = { htreeConverted: 0, nameCollisions: 0, writes: 0 };

  /** Prepares a walk of `vol`; `writer` null audits only, otherwise the walk also scrubs. */
  constructor(
    vol: ExtVolume,
    writer: PrivacyWriter | null,
    findings: FindingCollector,
    options: ExtPrivacyWalkOptions = {},
  ) {
    this.#vol = vol;
    this.#src = vol.source;
    this.#out = writer;
    this.#find = findings;
    this.#bs = vol.blockSize;
    this.#csum = (vol.superblock.featureRoCompat & RO_COMPAT.METADATA_CSUM) !== 0;
    this.#seed = vol.csumSeed;
    this.#wipeData = options.wipeData ?? true;
    this.#freeSpace = options.freeSpace ?? false;
  }

  get #scrub(): boolean {
    return this.#out !== null;
  }

  #read(offset: number, buf: Uint8Array): void {
    let done = 0;
    while (done < buf.length) {
      if (offset + done >= this.#src.size) break;
      const n = this.#src.readAt(offset + done, buf.subarray(done));
      if (n <= 0) break;
      done += n;
    }
    buf.fill(0, done); // past the end of a truncated image: zeros
  }

  #write(offset: number, data: Uint8Array): void {
    this.#out!.writeAt(offset, data);
    this.counts.writes++;
  }

  /** Runs the whole walk. */
  run(): void {
    this.#superblocks();
    this.#mmp();
    const vol = this.#vol;
    const journalIno = vol.superblock.journalInum;
    for (let g = 0; g < vol.groupCount; g++) this.#group(g, journalIno);
    this.#flushData();
    if (this.#freeSpace) this.#free();
  }

  // ---- free space -------------------------------------------------------------------------

  /** Blocks the (in-memory) block bitmaps mark free: counted and, in scrub mode, zeroed. */
  #free(): void {
    const vol = this.#vol;
    const ratio = vol.clusterRatio;
    const startC = Math.floor(vol.firstDataBlock / ratio);
    let total = 0;
    let sample = "";
    for (let g = 0; g < vol.groupCount; g++) {
      const bitmap = vol.blockBitmap(g);
      const base = startC + g * vol.clustersPerGroup;
      const free: BlockExtent[] = [];
      for (let c = 0; c < vol.clustersPerGroup; c++) {
        if ((bitmap[c >> 3]! >> (c & 7)) & 1) continue;
        const first = Math.max((base + c) * ratio, vol.firstDataBlock);
        const end = Math.min((base + c + 1) * ratio, vol.blocksCount);
        if (end <= first) continue;
        const last = free[free.length - 1];
        if (last && last.start + last.count === first) last.count += end - first;
        else free.push({ start: first, count: end - first });
      }
      const r = this.#wipeExtents(free, true);
      total += r.count;
      if (!sample) sample = r.sample;
    }
    if (total) this.#find.add("free-space", total, sample || undefined);
  }

  // ---- superblock and backups -------------------------------------------------------------

  #superblocks(): void {
    const vol = this.#vol;
    const sb = vol.superblockBytes();
    const uuid = hexUuid(sb.subarray(0x68, 0x78));
    this.#find.add("uuid", 1, `fs ${uuid}`, "info");
    if ((vol.superblock.featureCompat & COMPAT.HAS_JOURNAL) && !isZero(sb.subarray(0xd0, 0xe0))) {
      this.#find.add("uuid", 1, `journal ${hexUuid(sb.subarray(0xd0, 0xe0))}`, "info");
    }
    const locations = [1024];
    for (let g = 1; g < vol.groupCount; g++) {
      if (vol.groupHasSuper(g)) locations.push(vol.groupFirstBlock(g) * this.#bs);
    }
    let first = true;
    for (const off of locations) {
      const b = off === 1024 ? sb : new Uint8Array(1024);
      if (off !== 1024) this.#read(off, b);
      if (u16(b, 0x38) !== 0xef53) continue;
      const label = b.subarray(0x78, 0x88);
      const mounted = b.subarray(0x88, 0xc8);
      const opts = b.subarray(0x200, 0x240);
      const leakLabel = !isZero(label), leakMounted = !isZero(mounted), leakOpts = !isZero(opts);
      if (first) {
        if (leakLabel) this.#find.add("label", 1, cString(label));
        if (leakMounted) this.#find.add("last-mounted", 1, cString(mounted));
        if (leakOpts) this.#find.add("last-mounted", 1, `mount options ${cString(opts)}`);
        first = false;
      } else if (leakLabel || leakMounted || leakOpts) {
        this.#find.add(leakLabel ? "label" : "last-mounted", 1, `backup superblock at ${off}`);
      }
      if (this.#scrub && (leakLabel || leakMounted || leakOpts)) {
        label.fill(0);
        mounted.fill(0);
        opts.fill(0);
        if (this.#csum) setSuperblockChecksum(b);
        this.#write(off, b);
      }
    }
  }

  /** The MMP block records the host name and device path of the last opener. */
  #mmp(): void {
    const vol = this.#vol;
    const blk = vol.superblock.mmpBlock;
    if (!(vol.superblock.featureIncompat & INCOMPAT.MMP)) return;
    if (blk < vol.firstDataBlock || blk >= vol.blocksCount) return;
    const b = new Uint8Array(this.#bs);
    this.#read(blk * this.#bs, b);
    if (u32(b, 0) !== 0x004d4d50) return; // mmp_magic
    const node = b.subarray(0x10, 0x50), dev = b.subarray(0x50, 0x70);
    if (isZero(node) && isZero(dev)) return;
    this.#find.add("last-mounted", 1, `MMP ${cString(node)} ${cString(dev)}`);
    if (!this.#scrub) return;
    node.fill(0);
    dev.fill(0);
    if (this.#csum) setMmpChecksum(b, this.#seed);
    this.#write(blk * this.#bs, b);
  }

  // ---- inode tables -----------------------------------------------------------------------

  #group(g: number, journalIno: number): void {
    const vol = this.#vol;
    const d = vol.groups[g]!;
    if (vol.hasGroupChecksums && (d.flags & BG_FLAGS.INODE_UNINIT)) return;
    const ipg = vol.inodesPerGroup;
    const used = vol.hasGroupChecksums ? Math.max(0, ipg - d.itableUnused) : ipg;
    if (used === 0 || d.inodeTable === 0) return;
    if (
      d.inodeTable < vol.firstDataBlock ||
      d.inodeTable + vol.inodeBlocksPerGroup > vol.blocksCount
    ) {
      throw new CorruptImageError(
        `Cannot scan ext inodes: group ${g}'s inode table at block ${d.inodeTable} lies outside the file system`,
        { format: "ext", structure: `group descriptor ${g}`, field: "bg_inode_table" },
      );
    }
    const isz = vol.inodeSize;
    const base = d.inodeTable * this.#bs;
    const table = new Uint8Array(used * isz);
    this.#read(base, table);
    const bitmap = vol.inodeBitmap(g);
    let lo = Infinity, hi = -1;
    for (let i = 0; i < used; i++) {
      const ino = g * ipg + i + 1;
      if (ino > vol.superblock.inodesCount) break;
      const raw = table.subarray(i * isz, (i + 1) * isz);
      const inUse = (bitmap[i >> 3]! >> (i & 7)) & 1;
      let changed: boolean | "zeroed";
      try {
        changed = inUse ? this.#inode(ino, raw, journalIno) : this.#unusedInode(ino, raw);
      } catch (e) {
        if (e instanceof CorruptImageError) continue; // a damaged inode: leave it as it is
        throw e;
      }
      if (changed) {
        // An all-zero inode needs no checksum (libext2fs accepts it as never used).
        if (this.#csum && changed !== "zeroed") setInodeChecksum(raw, ino, this.#seed);
        lo = Math.min(lo, i);
        hi = Math.max(hi, i);
      }
    }
    if (this.#scrub && hi >= 0) {
      this.#write(base + lo * isz, table.subarray(lo * isz, (hi + 1) * isz));
    }
  }

  #unusedInode(ino: number, raw: Uint8Array): false | "zeroed" {
    if (ino < this.#vol.superblock.firstIno) return false;
    if (u16(raw, 0x1a) !== 0 || isZero(raw)) return false; // i_links_count
    // A deleted inode keeps its mode, times, block map, fast symlink or inline data and xattrs.
    const fastText = u16(raw, 0) & S_IFMT ? printableRun(raw.subarray(0x28, 0x64)) : "";
    this.#find.add("deleted-inodes", 1, fastText ? `inode ${ino}: ${fastText}` : `inode ${ino}`);
    if (!this.#scrub) return false;
    raw.fill(0);
    return "zeroed";
  }

  /** Returns true when `raw` changed (the caller redoes the checksum and writes it back). */
  #inode(ino: number, raw: Uint8Array, journalIno: number): boolean {
    const vol = this.#vol;
    const inode = parseExtInode(raw, 0, vol.inodeSize, vol.is64bit);
    if (inode.linksCount === 0 && ino !== journalIno) return false;
    let changed = false;
    const inlineValue = this.#inodeXattrs(ino, raw, inode);
    if (inlineValue.changed) changed = true;
    if (inode.fileAcl !== 0) this.#xattrBlock(inode.fileAcl);
    const fmt = inode.mode & S_IFMT;
    if (ino === journalIno) {
      this.#journal(inode);
      return changed;
    }
    if (ino < vol.superblock.firstIno && ino !== 2) return changed;
    const inline = (inode.flags & INODE_FLAGS.INLINE_DATA) !== 0;
    if (fmt === S_IFDIR) {
      if (inode.flags & 0x800) return changed; // encrypted: names are ciphertext
      if (inline) {
        if (this.#inlineDir(ino, raw, inlineValue.value)) changed = true;
      } else if (this.#blockDir(ino, raw, inode)) changed = true;
    } else if (fmt === S_IFLNK) {
      if (inline || !inodeHasValidBlocks(inode)) {
        if (this.#inlineContent(ino, raw, inode, inlineValue.value, "symlink-targets")) {
          changed = true;
        }
      } else this.#slowSymlink(ino, inode);
    } else if (fmt === S_IFREG) {
      if (inode.flags & INODE_FLAGS.EA_INODE) return changed; // an xattr value: see docs
      if (inline) {
        if (this.#inlineContent(ino, raw, inode, inlineValue.value, "inline-data")) changed = true;
      } else this.#fileData(inode);
    }
    return changed;
  }

  // ---- xattrs -----------------------------------------------------------------------------

  /**
   * Scans (and scrubs) the in-inode xattrs. Returns the location of the `system.data` value
   * (inline data beyond i_block) inside `raw`.
   */
  #inodeXattrs(
    ino: number,
    raw: Uint8Array,
    inode: ExtInode,
  ): { changed: boolean; value?: Uint8Array } {
    const isz = raw.length;
    if (isz <= 128 || inode.extraIsize < 4 || 128 + inode.extraIsize + 4 > isz) {
      return { changed: false };
    }
    const start = 128 + inode.extraIsize;
    if (u32(raw, start) !== XATTR_MAGIC) return { changed: false };
    const region = raw.subarray(start + 4);
    const r = this.#xattrEntries(region, 0, region, `inode ${ino}`, false);
    return { changed: r.changed, ...(r.systemData ? { value: r.systemData } : {}) };
  }

  #xattrBlock(blk: number): void {
    if (this.#doneXattrBlocks.has(blk) || blk >= this.#vol.blocksCount) return;
    this.#doneXattrBlocks.add(blk);
    const b = new Uint8Array(this.#bs);
    this.#read(blk * this.#bs, b);
    if (u32(b, 0) !== XATTR_MAGIC) return;
    const r = this.#xattrEntries(b, 32, b, `xattr block ${blk}`, true);
    if (!r.changed || !this.#scrub) return;
    const hashes = r.hashes;
    const h = xattrBlockHash(hashes);
    b[12] = h & 0xff, b[13] = (h >>> 8) & 0xff, b[14] = (h >>> 16) & 0xff, b[15] = h >>> 24;
    if (this.#csum) setXattrBlockChecksum(b, blk, this.#seed);
    this.#write(blk * this.#bs, b);
  }

  /**
   * Walks xattr entries from `first` in `area`; values are at offsets relative to `valueBase`
   * (the first entry for in-inode xattrs, the block for xattr blocks).
   */
  #xattrEntries(
    area: Uint8Array,
    first: number,
    valueBase: Uint8Array,
    where: string,
    inBlock: boolean,
  ): { changed: boolean; systemData?: Uint8Array; hashes: number[] } {
    let p = first;
    let changed = false;
    let systemData: Uint8Array | undefined;
    const hashes: number[] = [];
    const names = new Map<string, number>(); // per (index, length) counters, in entry order
    while (p + 16 <= area.length && u32(area, p) !== 0) {
      const nameLen = area[p]!, index = area[p + 1]!;
      const vOffs = u16(area, p + 2), vInum = u32(area, p + 4), vSize = u32(area, p + 8);
      const hash = u32(area, p + 12);
      const entLen = (nameLen + 16 + 3) & ~3;
      if (p + entLen > area.length) break;
      const name = area.subarray(p + 16, p + 16 + nameLen);
      const validValue = vInum === 0 && vSize > 0 && vOffs + vSize <= valueBase.length;
      const value = validValue ? valueBase.subarray(vOffs, vOffs + vSize) : undefined;
      const isUser = USER_XATTR_INDEXES.has(index);
      if (index === XATTR_INDEX_SYSTEM && nameLen === 4 && DEC.decode(name) === "data") {
        systemData = value ?? new Uint8Array(0);
      }
      let entryChanged = false;
      if (isUser && nameLen > 0) {
        // Ids count up in entry order (blocks keep their sort order); in-inode names start at
        // A…, block names halfway (N… for one letter), so one file's two sets never meet.
        const k = `${index}/${nameLen}`;
        const base = inBlock ? Math.floor(26 ** Math.min(nameLen, 8) / 2) : 0;
        const id = names.get(k) ?? base;
        names.set(k, id + 1);
        if (!looksScrambled(name)) {
          this.#find.add("xattr-names", 1, `${where}: ${xattrPrefix(index)}${DEC.decode(name)}`);
          if (this.#scrub) {
            name.set(new TextEncoder().encode(scrambledName(id, nameLen)));
            entryChanged = true;
          }
        }
      }
      if (isUser && value && !isZero(value)) {
        this.#find.add("xattr-values", 1, `${where}: ${printableRun(value) || `${vSize} bytes`}`);
        if (this.#scrub) {
          value.fill(0);
          entryChanged = true;
        }
      }
      if (entryChanged) {
        changed = true;
        if (inBlock || hash !== 0) {
          const h = xattrEntryHash(name, vInum === 0 ? value ?? new Uint8Array(0) : undefined);
          if (vInum === 0) {
            area[p + 12] = h & 0xff, area[p + 13] = (h >>> 8) & 0xff;
            area[p + 14] = (h >>> 16) & 0xff, area[p + 15] = h >>> 24;
          }
        }
      }
      hashes.push(u32(area, p + 12));
      p += entLen;
    }
    return { changed, ...(systemData ? { systemData } : {}), hashes };
  }

  // ---- directories ------------------------------------------------------------------------

  #dataBlocks(inode: ExtInode): BlockRef[] {
    const out: BlockRef[] = [];
    const max = this.#vol.blocksCount;
    walkInodeBlocks(inode, this.#vol.walkContext(), (start, count, blockcnt) => {
      if (blockcnt < 0) return;
      for (let i = 0; i < count && out.length < max; i++) {
        if (start + i < max) out.push({ lblk: blockcnt + i, pblk: start + i });
      }
    });
    return out;
  }

  /** Reads runs of physically consecutive blocks (≤ 1 MiB), calls `fn` per run, writes back. */
  #runs(
    blocks: readonly BlockRef[],
    fn: (buf: Uint8Array, refs: readonly BlockRef[]) => boolean,
  ): void {
    const bs = this.#bs, maxBlocks = Math.max(1, MAX_RUN_BYTES / bs);
    let i = 0;
    const buf = new Uint8Array(Math.min(blocks.length, maxBlocks) * bs);
    while (i < blocks.length) {
      let j = i + 1;
      while (
        j < blocks.length && j - i < maxBlocks && blocks[j]!.pblk === blocks[j - 1]!.pblk + 1
      ) j++;
      const run = buf.subarray(0, (j - i) * bs);
      this.#read(blocks[i]!.pblk * bs, run);
      if (fn(run, blocks.slice(i, j)) && this.#scrub) this.#write(blocks[i]!.pblk * bs, run);
      i = j;
    }
  }

  #blockDir(ino: number, raw: Uint8Array, inode: ExtInode): boolean {
    const bs = this.#bs;
    const gen = u32(raw, 0x64);
    const htree = (inode.flags & INODE_FLAGS.INDEX) !== 0;
    const names = new DirNames();
    const blocks = this.#dataBlocks(inode);
    let inodeChanged = false;
    this.#runs(blocks, (buf, refs) => {
      let any = false;
      for (let k = 0; k < refs.length; k++) {
        const block = buf.subarray(k * bs, (k + 1) * bs);
        const tail = this.#csum && hasDirentTail(block);
        let changed: boolean;
        if (htree && refs[k]!.lblk === 0) changed = this.#dxRoot(block, ino, names);
        else if (htree && isDxNode(block)) changed = this.#emptyDirBlock(block);
        else {
          changed = this.#dirents(block, 0, tail ? bs - DIRENT_TAIL_SIZE : bs, ino, names);
        }
        if (changed && this.#scrub) {
          if (this.#csum && hasDirentTail(block)) setDirBlockChecksum(block, ino, gen, this.#seed);
          any = true;
        }
      }
      return any;
    });
    if (htree && this.#scrub) {
      // The hashes no longer match the names: make it a linear directory (e2fsck accepts it).
      const flags = u32(raw, 0x20) & ~INODE_FLAGS.INDEX;
      raw[0x20] = flags & 0xff, raw[0x21] = (flags >>> 8) & 0xff;
      raw[0x22] = (flags >>> 16) & 0xff, raw[0x23] = flags >>> 24;
      this.counts.htreeConverted++;
      inodeChanged = true;
    }
    this.counts.nameCollisions += names.collisions;
    return inodeChanged;
  }

  /** The htree root block: keep "." and "..", drop the index (scrub). */
  #dxRoot(block: Uint8Array, ino: number, names: DirNames): boolean {
    const bs = this.#bs;
    const dotLen = decodeRecLen(u16(block, 4), bs);
    if (dotLen !== 12 || block[6] !== 1 || block[8] !== 0x2e) {
      return this.#dirents(block, 0, bs, ino, names); // not a dx root after all
    }
    // Names are not in the root block; the index itself holds only hashes and block numbers.
    if (!this.#scrub) return false;
    const end = this.#csum ? bs - DIRENT_TAIL_SIZE : bs;
    put16(block, 12 + 4, encodeRecLen(end - 12, bs));
    const dotdotName = block[12 + 6]!;
    block.fill(0, 12 + 8 + dotdotName, bs);
    if (this.#csum) writeDirentTail(block);
    return true;
  }

  /** Turns a dx node (or a leaf with no live entry) into an empty leaf (scrub). */
  #emptyDirBlock(block: Uint8Array): boolean {
    if (!this.#scrub) return false;
    const bs = this.#bs;
    block.fill(0);
    const end = this.#csum ? bs - DIRENT_TAIL_SIZE : bs;
    put16(block, 4, encodeRecLen(end, bs));
    if (this.#csum) writeDirentTail(block);
    return true;
  }

  /**
   * Visits the entries in `block[start, end)`: live names are counted and scrambled, names of
   * deleted entries (inode 0) and slack bytes are counted and zeroed.
   */
  #dirents(
    block: Uint8Array,
    start: number,
    end: number,
    dirIno: number,
    names: DirNames,
  ): boolean {
    let p = start;
    let changed = false;
    const bs = this.#bs;
    const enc = new TextEncoder();
    while (p + 8 <= end) {
      const inum = u32(block, p);
      const recLen = decodeRecLen(u16(block, p + 4), bs);
      const nameLen = block[p + 6]!;
      if (recLen < 8 || recLen % 4 || p + recLen > end || nameLen + 8 > recLen) {
        // Corrupt from here on: wipe the rest of the area as slack, keeping the structure.
        const rest = block.subarray(p + 8, end);
        if (!isZero(rest)) {
          this.#find.add("dir-slack", rest.length, `directory ${dirIno}`);
          if (this.#scrub) {
            rest.fill(0);
            put16(block, p + 4, encodeRecLen(end - p, bs));
            block[p + 6] = 0;
            changed = true;
          }
        }
        break;
      }
      const name = block.subarray(p + 8, p + 8 + nameLen);
      const slack = block.subarray(p + 8 + nameLen, p + recLen);
      if (inum === 0) {
        if (nameLen > 0 && !isZero(name)) {
          this.#find.add("deleted-names", 1, DEC.decode(name));
          if (this.#scrub) {
            name.fill(0);
            block[p + 6] = 0;
            block[p + 7] = 0;
            changed = true;
          }
        }
      } else if (!isSpecialName(name, dirIno)) {
        if (!looksScrambled(name)) {
          this.#find.add("names", 1, DEC.decode(name));
          if (this.#scrub) {
            name.set(enc.encode(names.next(nameLen)));
            changed = true;
          }
        } else names.next(nameLen);
      }
      if (!isZero(slack)) {
        const hidden = hiddenName(slack);
        if (hidden) this.#find.add("deleted-names", 1, hidden);
        this.#find.add("dir-slack", slack.length, `directory ${dirIno}`);
        if (this.#scrub) {
          slack.fill(0);
          changed = true;
        }
      }
      p += recLen;
    }
    return changed;
  }

  /** An inline-data directory: entries after the 4-byte parent in i_block, then in system.data. */
  #inlineDir(ino: number, raw: Uint8Array, value: Uint8Array | undefined): boolean {
    const names = new DirNames();
    let changed = this.#dirents(raw.subarray(0x28, 0x64), 4, 60, ino, names);
    if (value && value.length >= 8 && this.#dirents(value, 0, value.length, ino, names)) {
      changed = true;
    }
    this.counts.nameCollisions += names.collisions;
    return changed;
  }

  // ---- contents ---------------------------------------------------------------------------

  /** Inline data or a fast symlink: i_block (and system.data) hold the bytes. */
  #inlineContent(
    ino: number,
    raw: Uint8Array,
    inode: ExtInode,
    value: Uint8Array | undefined,
    kind: "inline-data" | "symlink-targets",
  ): boolean {
    const size = Math.min(inode.size, 60 + (value?.length ?? 0));
    const iblock = raw.subarray(0x28, 0x64);
    const first = iblock.subarray(0, Math.min(60, size));
    const rest = value ? value.subarray(0, Math.max(0, size - 60)) : new Uint8Array(0);
    const symlink = kind === "symlink-targets";
    const clean = symlink ? allX(first) && allX(rest) : isZero(first) && isZero(rest);
    const staleTail = isZero(iblock.subarray(first.length)) ? 0 : 1;
    if (clean && !staleTail) return false;
    if (!clean) {
      const text = DEC.decode(concat(first, rest));
      this.#find.add(kind, 1, `inode ${ino}: ${printableRun(new TextEncoder().encode(text))}`);
    } else this.#find.add(kind === "symlink-targets" ? "symlink-targets" : kind, 1, `inode ${ino}`);
    if (!this.#scrub) return false;
    if (symlink) {
      first.fill(X);
      rest.fill(X);
    } else {
      first.fill(0);
      rest.fill(0);
    }
    iblock.fill(0, first.length);
    if (value) value.fill(0, rest.length);
    return true;
  }

  #slowSymlink(ino: number, inode: ExtInode): void {
    const blocks = this.#dataBlocks(inode).filter((b) => b.lblk === 0);
    const size = inode.size;
    if (blocks.length === 0 || size >= this.#bs) return;
    this.#runs(blocks, (b) => {
      const target = b.subarray(0, size);
      if (allX(target) && isZero(b.subarray(size))) return false;
      this.#find.add("symlink-targets", 1, `inode ${ino}: ${printableRun(target)}`);
      if (!this.#scrub) return false;
      target.fill(X);
      b.fill(0, size);
      return true;
    });
  }

  /** Queues the data blocks of a regular file; they are read in merged batches later. */
  #fileData(inode: ExtInode): void {
    const max = this.#vol.blocksCount;
    walkInodeBlocks(inode, this.#vol.walkContext(), (start, count, blockcnt) => {
      if (blockcnt < 0 || start >= max) return;
      this.#pendingData.push({ start, count: Math.min(count, max - start) });
    });
    if (this.#pendingData.length >= 1 << 20) this.#flushData();
  }

  #flushData(): void {
    const found = this.#wipeExtents(mergeBlockExtents(this.#pendingData), this.#wipeData);
    this.#pendingData.length = 0;
    if (found.count) this.#find.add("file-data", found.count, found.sample || undefined);
  }

  /**
   * Reads `extents` (sorted, merged) in batches of up to 1 MiB, counts the non-zero blocks and,
   * when scrubbing and `wipe`, zeroes the batches that are not zero.
   */
  #wipeExtents(extents: readonly BlockExtent[], wipe: boolean): { count: number; sample: string } {
    const bs = this.#bs, maxBlocks = Math.max(1, MAX_RUN_BYTES / bs);
    const buf = new Uint8Array(maxBlocks * bs);
    let count = 0;
    let sample = "";
    for (const e of extents) {
      for (let b = e.start; b < e.start + e.count; b += maxBlocks) {
        const n = Math.min(maxBlocks, e.start + e.count - b);
        const chunk = buf.subarray(0, n * bs);
        this.#read(b * bs, chunk);
        if (isZero(chunk)) continue;
        for (let k = 0; k < chunk.length; k += bs) {
          const blk = chunk.subarray(k, k + bs);
          if (!isZero(blk)) {
            count++;
            if (!sample) sample = printableRun(blk);
          }
        }
        if (this.#scrub && wipe) {
          chunk.fill(0);
          this.#write(b * bs, chunk);
        }
      }
    }
    return { count, sample };
  }

  #journal(inode: ExtInode): void {
    const blocks = this.#dataBlocks(inode);
    if (blocks.length === 0) return;
    const bs = this.#bs;
    let found = 0;
    let sample: string | undefined;
    this.#runs(blocks, (buf, refs) => {
      let changed = false;
      for (let k = 0; k < refs.length; k++) {
        const blk = buf.subarray(k * bs, (k + 1) * bs);
        if (refs[k]!.lblk === 0 && u32be(blk, 0) === JBD2_MAGIC) {
          const jsb = blk.subarray(0, 1024);
          const start = u32be(jsb, 0x1c); // s_start
          const after = blk.subarray(1024);
          if (start !== 0 || !isZero(after)) {
            found++;
            if (this.#scrub) {
              put32be(jsb, 0x1c, 0);
              after.fill(0);
              setJournalSuperblockChecksum(jsb);
              changed = true;
            }
          }
          continue;
        }
        if (!isZero(blk)) {
          found++;
          if (!sample) sample = printableRun(blk);
          if (this.#scrub) {
            blk.fill(0);
            changed = true;
          }
        }
      }
      return changed;
    });
    if (found) this.#find.add("journal", found, sample ? `block: ${sample}` : undefined);
    if (this.#scrub && found && (this.#vol.superblock.featureIncompat & INCOMPAT.RECOVER)) {
      // The journal is empty now: nothing is left to recover.
      const sb = this.#vol.superblockBytes();
      const v = u32(sb, 0x60) & ~INCOMPAT.RECOVER;
      sb[0x60] = v & 0xff, sb[0x61] = (v >>> 8) & 0xff, sb[0x62] = (v >>> 16) & 0xff;
      sb[0x63] = v >>> 24;
      sb.fill(0, 0x78, 0xc8);
      sb.fill(0, 0x200, 0x240);
      if (this.#csum) setSuperblockChecksum(sb);
      this.#write(1024, sb);
    }
  }
}

// ---- helpers --------------------------------------------------------------------------------

function decodeRecLen(v: number, bs: number): number {
  if (v === 65535 || v === 0) return bs;
  return (v & 65532) | ((v & 3) << 16);
}

function encodeRecLen(len: number, bs: number): number {
  if (len < 65536) return len;
  if (len === bs) return bs === 65536 ? 65535 : 0;
  return (len & 65532) | ((len >> 16) & 3);
}

/** A dx interior node: a fake entry with inode 0 spanning the whole block and no name. */
function isDxNode(block: Uint8Array): boolean {
  return u32(block, 0) === 0 && decodeRecLen(u16(block, 4), block.length) === block.length &&
    block[6] === 0;
}

function isSpecialName(name: Uint8Array, dirIno: number): boolean {
  if (name.length === 1 && name[0] === 0x2e) return true;
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return true;
  return dirIno === 2 && name.length === 10 && DEC.decode(name) === "lost+found";
}

/** A deleted entry hidden in slack: a plausible dirent header followed by a printable name. */
function hiddenName(slack: Uint8Array): string | undefined {
  for (let p = (4 - (slack.byteOffset & 3)) & 3; p + 9 <= slack.length; p += 4) {
    const nameLen = slack[p + 6]!;
    if (nameLen === 0 || p + 8 + nameLen > slack.length) continue;
    const name = slack.subarray(p + 8, p + 8 + nameLen);
    if (name.every((c) => c >= 0x20 && c !== 0x2f && c !== 0x7f)) return DEC.decode(name);
  }
  return undefined;
}

function allX(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== X) return false;
  return true;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}

function cString(b: Uint8Array): string {
  const z = b.indexOf(0);
  return DEC.decode(z < 0 ? b : b.subarray(0, z));
}

function hexUuid(b: Uint8Array): string {
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function xattrPrefix(index: number): string {
  return index === 1 ? "user." : index === 4 ? "trusted." : index === 6 ? "security." : "";
}
