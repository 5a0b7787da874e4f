/**
 * Metadata-only clones (ntfsclone `-m`): which clusters are kept, and how MFT records and
 * directory index blocks are wiped (resident user data, unused and deleted record bytes,
 * time stamps set to 1970-01-01), reproducing ntfsclone 2022.10.3 exactly, including the
 * order in which a metadata image (`-m -s`) emits its clusters and its counters.
 *
 * The wipes are pure functions over record bytes; {@linkcode emitMetadata} walks a volume and
 * drives a {@linkcode MetadataSink} (an image writer, or a file at cluster offsets).
 *
 * @module
 */
import { CorruptImageError, ReadError } from "../errors.ts";
import { u16, u32 } from "../_internal/bytes.ts";
import { describeTornRecord, protectFixups, undoFixups } from "./fixup.ts";
import {
  AttrType,
  MFT_RECORD_IN_USE,
  type MftRecordHeader,
  type NtfsAttribute,
  parseAttributes,
} from "./record.ts";
import { LCN_HOLE, type NtfsRun } from "./runlist.ts";
import { inodeOpenFailure, type NtfsVolume, type NtfsWalkInode, SystemFile } from "./volume.ts";

/** The last system inode (records 0..11 are never wiped of data). */
export const LAST_METADATA_INODE = 11;
/** What ntfsclone writes for a wiped time stamp: 1970-01-01 in NTFS time (timespec2ntfs(0)). */
export const NTFS_EPOCH_1970 = 116444736000000000n;

/** ntfsclone's wipe counters (unsigned 32-bit in the original). */
export interface WipeStats {
  /** In-use MFT records opened by the second walk. */
  usedRecords: number;
  /** Non-zero bytes zeroed after bytes_in_use. */
  unusedMftData: number;
  /** Non-zero bytes zeroed in deleted records (after the 48-byte header). */
  deletedMftData: number;
  /** Non-zero bytes of resident user data zeroed. */
  residentData: number;
  /** Time stamp bytes set (32 per attribute or index entry, 4 per quota entry). */
  timestampData: number;
}

/** A zeroed {@linkcode WipeStats}. */
export function newWipeStats(): WipeStats {
  return { usedRecords: 0, unusedMftData: 0, deletedMftData: 0, residentData: 0, timestampData: 0 };
}

/** Options of the wipes. */
export interface WipeOptions {
  /** Keep time stamps (`-t`). */
  preserveTimestamps?: boolean;
  /**
   * Called when a record's attributes end early at a malformed one (libntfs logs
   * `ntfs_attr_find: Corrupt inode (-1)` for records it wipes without an inode).
   */
  onCorruptRecord?: () => void;
  /** Called with other lines libntfs logs while wiping (torn records, refused fixups). */
  onLog?: (line: string) => void;
}

/** A 32-bit view of the last buffer {@linkcode zeroNonZero} worked on (records share one). */
let wordView: { buffer: ArrayBufferLike; words: Uint32Array } | undefined;

/** Zeroes `b[from, to)` (clamped to `b`); returns how many bytes were not zero already. */
function zeroNonZero(b: Uint8Array, from: number, to: number): number {
  let n = 0;
  let i = Math.max(0, from);
  const end = Math.min(to, b.length);
  const at = b.byteOffset;
  // Skip whole zero words (the wiped areas are mostly zero already), byte by byte elsewhere.
  while (i < end && ((at + i) & 3) !== 0) {
    if (b[i] !== 0) {
      b[i] = 0;
      n++;
    }
    i++;
  }
  if (end - i >= 64) {
    if (wordView?.buffer !== b.buffer) {
      wordView = {
        buffer: b.buffer,
        words: new Uint32Array(b.buffer, 0, b.buffer.byteLength >> 2),
      };
    }
    const w = wordView.words;
    const stop = (at + end) >> 2;
    for (let k = (at + i) >> 2; k < stop; k++) {
      if (w[k] === 0) continue;
      const o = 4 * k - at;
      for (let j = o; j < o + 4; j++) if (b[j] !== 0) n++;
      w[k] = 0;
    }
    i = 4 * stop - at;
  }
  for (; i < end; i++) {
    if (b[i] !== 0) {
      b[i] = 0;
      n++;
    }
  }
  return n;
}

/** {@linkcode NTFS_EPOCH_1970} as its 8 little-endian bytes. */
const EPOCH_BYTES = new Uint8Array([0x00, 0x80, 0x3e, 0xd5, 0xde, 0xb1, 0x9d, 0x01]);

function putEpoch(b: Uint8Array, at: number): boolean {
  if (at < 0 || at + 8 > b.length) return false;
  // Byte stores: cheaper than a set() call for 8 bytes.
  b[at] = EPOCH_BYTES[0]!;
  b[at + 1] = EPOCH_BYTES[1]!;
  b[at + 2] = EPOCH_BYTES[2]!;
  b[at + 3] = EPOCH_BYTES[3]!;
  b[at + 4] = EPOCH_BYTES[4]!;
  b[at + 5] = EPOCH_BYTES[5]!;
  b[at + 6] = EPOCH_BYTES[6]!;
  b[at + 7] = EPOCH_BYTES[7]!;
  return true;
}

/** Sets the 4 FILE_NAME time stamps of index entries from `at` to the END entry; returns count. */
function wipeIndexEntries(b: Uint8Array, at: number, limit: number): number {
  let n = 0;
  for (let guard = 0; guard < 65536 && at + 16 <= limit; guard++) {
    const flags = u16(b, at + 12);
    if (flags & 2) break; // INDEX_ENTRY_END
    const len = u16(b, at + 8);
    for (let k = 0; k < 4; k++) putEpoch(b, at + 24 + 8 * k);
    n += 32;
    if (len < 16) break;
    at += len;
  }
  return n;
}

/** Wipes one resident attribute of an in-use record in place (wipe_resident_data + timestamps). */
export function wipeResidentAttribute(
  rec: Uint8Array,
  a: NtfsAttribute,
  inode: number,
  options: WipeOptions,
  stats: WipeStats,
): void {
  if (a.nonResident) return;
  const v = a.valueOffset, end = a.valueOffset + a.valueLength;
  if (inode > LAST_METADATA_INODE && a.type === AttrType.DATA) {
    stats.residentData += zeroNonZero(rec, v, end);
  }
  if (options.preserveTimestamps) return;
  if (a.type === AttrType.FILE_NAME || a.type === AttrType.STANDARD_INFORMATION) {
    const base = a.type === AttrType.FILE_NAME ? v + 8 : v;
    for (let k = 0; k < 4; k++) putEpoch(rec, base + 8 * k);
    stats.timestampData += 32;
  } else if (a.type === AttrType.INDEX_ROOT && a.valueLength >= 32) {
    const type = u32(rec, v);
    let e = v + 16 + u32(rec, v + 16);
    for (let guard = 0; guard < 65536 && e + 16 <= end; guard++) {
      if (u16(rec, e + 12) & 2) break;
      if (type === AttrType.FILE_NAME) {
        for (let k = 0; k < 4; k++) putEpoch(rec, e + 24 + 8 * k);
        stats.timestampData += 32;
      } else if (a.name === "$Q") {
        const q = e + u16(rec, e);
        if (q + 24 <= rec.length && u32(rec, q) === 2) {
          putEpoch(rec, q + 16);
          stats.timestampData += 4;
        }
      }
      const len = u16(rec, e + 8);
      if (len < 16) break;
      e += len;
    }
  }
}

/** ntfs_mft_usn_dec: the update sequence number minus one (0 and 1 become 0xFFFE). */
function usnDec(rec: Uint8Array): void {
  const ofs = u16(rec, 4);
  if (ofs + 2 > rec.length) return;
  let usn = u16(rec, ofs);
  usn = usn <= 1 ? 0xfffe : usn - 1;
  rec[ofs] = usn & 0xff;
  rec[ofs + 1] = usn >> 8;
}

/**
 * Wipes a raw MFT record (as read from disk, fixups applied) in place as ntfsclone's
 * metadata image does (wipe_mft): undo the fixups (a torn record becomes "BAAD"), zero the
 * bytes after bytes_in_use (records > 11), zero deleted records after their header, wipe
 * resident user data and time stamps of in-use records, then re-apply the fixups keeping the
 * update sequence number.
 */
export function wipeMftRecord(
  rec: Uint8Array,
  mftNo: number,
  options: WipeOptions,
  stats: WipeStats,
): void {
  const fix = undoFixups(rec);
  if (fix === "torn") {
    // undoFixups leaves a torn record as read: describe it before marking it.
    const torn = describeTornRecord(rec);
    rec.set([0x42, 0x41, 0x41, 0x44]); // "BAAD"
    options.onLog?.(`${torn}: Input/output error`);
  }
  const inUse = u16(rec, 0x16);
  const bytesInUse = u32(rec, 0x18), bytesAllocated = u32(rec, 0x1c);
  if (mftNo > LAST_METADATA_INODE) {
    stats.unusedMftData += zeroNonZero(rec, bytesInUse, Math.min(bytesAllocated, rec.length));
  }
  if (!(inUse & MFT_RECORD_IN_USE)) {
    if (mftNo > LAST_METADATA_INODE) stats.deletedMftData += zeroNonZero(rec, 48, bytesInUse);
  } else {
    // libntfs enumerates the record's attributes without checking its header first.
    const attrsOffset = u16(rec, 0x14);
    let attrs: NtfsAttribute[] = [];
    if (attrsOffset < rec.length) {
      const h = { attrsOffset, bytesInUse: bytesInUse } as MftRecordHeader;
      attrs = parseAttributes(rec, h, 0, {
        lenient: true,
        onTruncated: () => options.onCorruptRecord?.(),
      });
    } else options.onCorruptRecord?.();
    for (const a of attrs) wipeResidentAttribute(rec, a, mftNo, options, stats);
  }
  usnDec(rec);
  if (fix === "ok") protectFixups(rec);
  else if (fix === "torn") {
    options.onLog?.("ntfs_mst_pre_write_fixup: bad argument: Invalid argument");
  } else options.onLog?.("ntfs_mst_pre_write_fixup: Invalid argument");
}

/**
 * Wipes the time stamps of a raw INDX block in place (wipe_indx). Returns false when the
 * fixups fail ("Damaged INDX record"); the block is then left with a "BAAD" magic if torn.
 */
export function wipeIndxBlock(block: Uint8Array, stats: WipeStats): boolean {
  const fix = undoFixups(block);
  if (fix !== "ok") {
    if (fix === "torn") block.set([0x42, 0x41, 0x41, 0x44]);
    return false;
  }
  const entriesOffset = u32(block, 0x18), allocated = u32(block, 0x20);
  if (u32(block, 0) === 0x58444e49 && entriesOffset >= 16 && allocated <= block.length) {
    stats.timestampData += wipeIndexEntries(block, 0x18 + entriesOffset, block.length);
  }
  usnDec(block);
  protectFixups(block);
  return true;
}

/** Where the clusters of a metadata clone go. */
export interface MetadataSink {
  /** Moves the position by `count` clusters (never 0; negative allowed). */
  gap(count: number): void;
  /** Stores whole clusters (the backup cluster may be short) at `lcn`, the current position. */
  clusters(lcn: number, data: Uint8Array): void;
}

/** Options of {@linkcode emitMetadata}. */
export interface EmitMetadataOptions extends WipeOptions {
  /** Copy all of $LogFile instead of its first 16 KiB (`--full-logfile`). */
  fullLogfile?: boolean;
  /**
   * Which index blocks are wiped: `"all"` (every INDX block of $I30 allocations, the metadata
   * image) or `"bitmap"` (only blocks marked in use in the index $BITMAP, of indexes of file
   * names: the sparse metadata clone).
   */
  indexBlocks?: "all" | "bitmap";
  /**
   * With --ignore-fs-check: the extra clusters ($Bitmap says used, nothing references them),
   * copied raw before the backup cluster after a gap back to cluster 0 (even when empty).
   */
  extra?: { start: number; count: number }[];
  /** Reads `buf.length` bytes at a byte offset (default: the volume's source, strictly). */
  read?: (offset: number, buf: Uint8Array) => void;
  /** Called before each MFT record number is examined. */
  onRecord?: (record: number, last: number) => void;
  /** Called for a damaged index block found while counting ("Damaged INDX record"). */
  onDamagedIndex?: () => void;
  /** Called when the extras are about to be copied (ntfsclone re-runs its bitmap check). */
  onExtra?: () => void;
  /** Passed to the walk (see {@linkcode NtfsWalkOptions.onCorruptInode}). */
  onCorruptInode?: (inode: number) => void;
  /** Passed to the walk (see {@linkcode NtfsWalkOptions.onCorruptAttributeList}). */
  onCorruptAttributeList?: (inode: number) => void;
  /** Passed to the walk (see {@linkcode NtfsWalkOptions.onOpenFailure}). */
  onOpenFailure?: (inode: number, message: string) => void;
  /** Passed to the walk (see {@linkcode NtfsWalkOptions.onTornRecord}). */
  onTornRecord?: (message: string) => void;
}

/** What {@linkcode emitMetadata} counted, by where the wipe happened. */
export interface EmitMetadataResult {
  /** The walk's own wipes (in-use inodes: resident data, time stamps, live index blocks). */
  walk: WipeStats;
  /** The wipes of the $MFT records copied (metadata image copy, or the in-place pass). */
  mft: WipeStats;
  /** The wipes of the $MFTMirr records copied (counted by the metadata image only). */
  mirror: WipeStats;
  /** The wipes of the INDX blocks copied (metadata image only). */
  index: WipeStats;
}

/** Sums counters. */
export function addWipeStats(...all: WipeStats[]): WipeStats {
  const r = newWipeStats();
  for (const s of all) {
    r.usedRecords += s.usedRecords;
    r.unusedMftData += s.unusedMftData;
    r.deletedMftData += s.deletedMftData;
    r.residentData += s.residentData;
    r.timestampData += s.timestampData;
  }
  return r;
}

/** VCN → LCN in a runlist (negative when a hole or unmapped). */
export function vcnToLcn(runs: readonly NtfsRun[], vcn: number): number {
  for (const r of runs) {
    if (vcn >= r.vcn && vcn < r.vcn + r.length) {
      return r.lcn === LCN_HOLE ? -1 : r.lcn + vcn - r.vcn;
    }
  }
  return -2;
}

/** The LCNs ntfsclone probes in $LogFile (bytes 0, 256, 512, 1024, … while mapped). */
export function logfileProbes(runs: readonly NtfsRun[], clusterSize: number): number[] {
  const out: number[] = [];
  for (let offset = 0; out.length < 64;) {
    const lcn = vcnToLcn(runs, Math.floor(offset / clusterSize));
    if (lcn < 0) break;
    out.push(lcn);
    offset = offset === 0 ? 256 : offset * 2;
  }
  return out;
}

/** is_critical_metadata: how many clusters of run `run` a metadata clone copies. */
export function criticalLength(
  inode: number,
  type: number,
  run: NtfsRun,
  clusterSize: number,
  fullLogfile: boolean,
): number {
  if (inode <= LAST_METADATA_INODE) {
    if (inode === SystemFile.BAD_CLUS && type === AttrType.DATA) return 0;
    if (inode !== SystemFile.LOG_FILE || fullLogfile) return run.length;
    if (type === AttrType.DATA) {
      const s = 16384 - run.vcn * clusterSize;
      if (s > 0) return Math.min(run.length, Math.ceil(s / clusterSize));
      return 0;
    }
  }
  return type !== AttrType.DATA ? run.length : 0;
}

/**
 * The first-pass count of a metadata image's header `inuse` (with ntfsclone's quirks: the
 * $LogFile critical length of the runlist's first element for every run, +1 per probe), before
 * the bad clusters are subtracted.
 */
export function metadataImageInuse(vol: NtfsVolume, fullLogfile: boolean): number {
  let inuse = 0;
  for (const ino of vol.walk()) inuse += metadataInodeInuse(ino, vol.clusterSize, fullLogfile);
  return inuse;
}

/**
 * One inode's share of {@linkcode metadataImageInuse}, for a caller that already walks the
 * volume (e.g. through the `onInode` hook of {@linkcode NtfsVolume.scan}): summed over the
 * inodes of a walk, it equals {@linkcode metadataImageInuse}.
 */
export function metadataInodeInuse(
  ino: NtfsWalkInode,
  clusterSize: number,
  fullLogfile: boolean,
): number {
  let inuse = 0;
  const cs = clusterSize;
  for (const { attr: a } of ino.attributes) {
    if (!a.nonResident) continue;
    const first = a.runs[0];
    for (const r of a.runs) {
      if (r.lcn === LCN_HOLE) continue;
      if (ino.inode === SystemFile.LOG_FILE && a.type === AttrType.DATA) {
        inuse += first ? criticalLength(ino.inode, a.type, first, cs, fullLogfile) : 0;
      } else if (ino.inode <= LAST_METADATA_INODE || a.type !== AttrType.DATA) inuse += r.length;
    }
    if (ino.inode === SystemFile.LOG_FILE && a.type === AttrType.DATA) {
      inuse += logfileProbes(a.runs, cs).length;
    }
  }
  return inuse;
}

function fullRuns(ino: NtfsWalkInode, type: number, name: string): NtfsRun[] {
  const parts = ino.attributes
    .filter((w) => w.attr.type === type && w.attr.name === name && w.attr.nonResident)
    .map((w) => w.attr)
    .sort((x, y) => x.lowestVcn - y.lowestVcn);
  const out: NtfsRun[] = [];
  for (const p of parts) out.push(...p.runs);
  return out;
}

/** Reads an attribute value (resident or not) of an inode, or undefined. */
function readValue(
  vol: NtfsVolume,
  ino: NtfsWalkInode,
  type: number,
  name: string,
): Uint8Array | undefined {
  const w = ino.attributes.find((x) => x.attr.type === type && x.attr.name === name);
  if (!w) return undefined;
  const a = w.attr;
  if (!a.nonResident) return w.bytes.slice(a.valueOffset, a.valueOffset + a.valueLength);
  if (a.dataSize > 64 << 20) return undefined;
  const v = new Uint8Array(a.dataSize);
  const init = Math.min(a.initializedSize, a.dataSize);
  if (!vol.readRuns(fullRuns(ino, type, name), 0, v.subarray(0, init))) return undefined;
  return v;
}

/** The index blocks of a file-name index that are marked in use, and how they are wiped. */
export interface LiveIndexBlocks {
  /** The index block size (INDEX_ROOT's index_block_size). */
  blockSize: number;
  /** The index $BITMAP (bit n: block n in use). */
  bitmap: Uint8Array;
  /** Number of blocks in the allocation's data_size. */
  blocks: number;
  /** A live block failed its fixups ("Damaged INDX record"): ntfsclone then writes none back. */
  damaged: boolean;
}

/** True when block `n` is marked in use. */
export function isLiveBlock(live: LiveIndexBlocks, n: number): boolean {
  return n < live.blocks && (((live.bitmap[n >> 3] ?? 0) >> (n & 7)) & 1) === 1;
}

/** Wipes the entries' time stamps of one index block in place (fixups undone and redone). */
function wipeLiveBlock(blk: Uint8Array, stats: WipeStats): boolean {
  if (undoFixups(blk) !== "ok") return false;
  stats.timestampData += wipeIndexEntries(blk, 0x18 + u32(blk, 0x18), blk.length);
  usnDec(blk);
  protectFixups(blk);
  return true;
}

/**
 * What wipe_index_allocation_timestamps wipes for one $INDEX_ALLOCATION attribute record of a
 * file-name index: the entries of the blocks marked in the index $BITMAP. Counts them into
 * `stats` (reading the allocation in 1 MiB batches, writing nothing); undefined when the index
 * is not a file-name index or its parts cannot be read.
 */
export function countLiveIndexBlocks(
  vol: NtfsVolume,
  ino: NtfsWalkInode,
  name: string,
  stats: WipeStats,
  onDamaged?: () => void,
): LiveIndexBlocks | undefined {
  const root = ino.attributes.find((x) =>
    x.attr.type === AttrType.INDEX_ROOT && x.attr.name === name
  );
  if (!root || root.attr.nonResident || root.attr.valueLength < 16) return undefined;
  const rv = root.attr.valueOffset;
  if (u32(root.bytes, rv) !== AttrType.FILE_NAME) return undefined;
  const blockSize = u32(root.bytes, rv + 8);
  if (blockSize < 512 || blockSize % 512 !== 0 || blockSize > 1 << 20) return undefined;
  const bitmap = readValue(vol, ino, AttrType.BITMAP, name);
  if (!bitmap) return undefined;
  const alloc = ino.attributes.find((x) =>
    x.attr.type === AttrType.INDEX_ALLOCATION && x.attr.name === name && x.attr.lowestVcn === 0
  );
  if (!alloc || !alloc.attr.nonResident || !alloc.attr.dataSize) return undefined;
  const a = alloc.attr;
  const runs = fullRuns(ino, AttrType.INDEX_ALLOCATION, name);
  const live: LiveIndexBlocks = {
    blockSize,
    bitmap,
    blocks: Math.ceil(a.dataSize / blockSize),
    damaged: false,
  };
  const init = Math.min(a.initializedSize, a.dataSize);
  const per = Math.max(1, Math.floor((1 << 20) / blockSize));
  const buf = new Uint8Array(Math.min(per, live.blocks) * blockSize);
  const scratch = newWipeStats();
  for (let first = 0; first < live.blocks; first += per) {
    const n = Math.min(per, live.blocks - first);
    let any = false;
    for (let i = 0; i < n && !any; i++) any = isLiveBlock(live, first + i);
    if (!any) continue;
    const chunk = buf.subarray(0, n * blockSize);
    chunk.fill(0);
    const off = first * blockSize;
    const readable = Math.max(0, Math.min(chunk.length, init - off));
    try {
      if (readable && !vol.readRuns(runs, off, chunk.subarray(0, readable))) return undefined;
    } catch (e) {
      if (e instanceof ReadError) return undefined;
      throw e;
    }
    for (let i = 0; i < n; i++) {
      if (!isLiveBlock(live, first + i)) continue;
      if (!wipeLiveBlock(chunk.subarray(i * blockSize, (i + 1) * blockSize), scratch)) {
        onDamaged?.();
        live.damaged = true;
        stats.timestampData += scratch.timestampData;
        return live;
      }
    }
  }
  stats.timestampData += scratch.timestampData;
  return live;
}

/**
 * Walks `vol` as ntfsclone's second metadata pass does and drives `sink` with the kept
 * clusters, wiped, in the exact order of a metadata image; counts what is wiped.
 */
export function emitMetadata(
  vol: NtfsVolume,
  sink: MetadataSink,
  options: EmitMetadataOptions = {},
): EmitMetadataResult {
  const cs = vol.clusterSize, nr = vol.nrClusters;
  const stats = newWipeStats();
  const mftStats = newWipeStats(), mirrorStats = newWipeStats(), indexStats = newWipeStats();
  const full = options.fullLogfile ?? false;
  const bitmapMode = options.indexBlocks === "bitmap";
  const read = options.read ?? ((offset: number, buf: Uint8Array) => {
    const n = vol.source.readAt(offset, buf);
    if (n < buf.length) {
      throw new ReadError(vol.source.name, offset + n, buf.length - n, "Input/output error");
    }
  });
  let cur = 0;
  const gapTo = (lcn: number) => {
    if (lcn !== cur) sink.gap(lcn - cur);
    cur = lcn;
  };
  const BATCH = Math.max(1, Math.floor((4 << 20) / cs));
  const buf = new Uint8Array(BATCH * cs);
  const copyRaw = (lcn: number, count: number) => {
    gapTo(lcn);
    while (count > 0) {
      const n = Math.min(count, BATCH);
      const chunk = buf.subarray(0, n * cs);
      read(lcn * cs, chunk);
      sink.clusters(lcn, chunk);
      lcn += n;
      count -= n;
      cur = lcn;
    }
  };
  // Emits the clusters of a record set (wiped) at their LCNs, gapping as needed.
  const writeSet = (data: Uint8Array, lcns: number[]) => {
    let i = 0;
    while (i < lcns.length) {
      let j = i + 1;
      while (j < lcns.length && lcns[j] === lcns[j - 1]! + 1) j++;
      gapTo(lcns[i]!);
      sink.clusters(lcns[i]!, data.subarray(i * cs, j * cs));
      cur = lcns[j - 1]! + 1;
      i = j;
    }
  };
  let wipeBuf = new Uint8Array(0);
  // copy_wipe_mft / copy_wipe_i30: sets of whole records (or whole clusters).
  const copyWipe = (
    runs: NtfsRun[],
    recordSize: number,
    wipe: (rec: Uint8Array, index: number) => void,
    what: string,
  ) => {
    const real = runs.filter((r) => r.lcn !== LCN_HOLE);
    const total = real.reduce((n, r) => n + r.length, 0);
    const clustersPerSet = cs >= recordSize ? 1 : recordSize / cs;
    const recordsPerSet = cs >= recordSize ? cs / recordSize : 1;
    if (total % clustersPerSet !== 0) {
      throw new CorruptImageError(`Cannot copy NTFS ${what}: Short last ${what}`, {
        format: "ntfs",
        structure: what,
        compat: `Short last ${what}\n`,
      });
    }
    const setBytes = clustersPerSet * cs;
    const perBatch = clustersPerSet * Math.max(1, Math.floor((1 << 20) / setBytes));
    // Memory follows the batch, not the attribute: the LCNs of one batch at a time.
    let ri = 0, rj = 0, index = 0;
    // One buffer for every call (a directory's index is often a few clusters).
    const need = Math.min(perBatch, total) * cs;
    if (wipeBuf.length < need) wipeBuf = new Uint8Array(Math.max(need, wipeBuf.length * 2));
    const data = wipeBuf;
    for (let done = 0; done < total;) {
      const n = Math.min(perBatch, total - done);
      const part: number[] = [];
      while (part.length < n) {
        const r = real[ri]!;
        const k = Math.min(r.length - rj, n - part.length);
        for (let q = 0; q < k; q++) part.push(r.lcn + rj + q);
        rj += k;
        if (rj === r.length) {
          ri++;
          rj = 0;
        }
      }
      const buf = data.subarray(0, n * cs);
      // Read contiguous stretches at once.
      let i = 0;
      while (i < n) {
        let j = i + 1;
        while (j < n && part[j] === part[j - 1]! + 1) j++;
        read(part[i]! * cs, buf.subarray(i * cs, j * cs));
        i = j;
      }
      for (let p = 0; p < buf.length; p += setBytes) {
        for (let r = 0; r < recordsPerSet; r++) {
          wipe(buf.subarray(p + r * recordSize, p + (r + 1) * recordSize), index++);
        }
      }
      writeSet(buf, part);
      done += n;
    }
  };

  const scratch = new Map<number, Uint8Array>();
  const pool: Uint8Array[] = [];
  const isFile = (b: Uint8Array) =>
    b[0] === 0x46 && b[1] === 0x49 && b[2] === 0x4c && b[3] === 0x45;
  const isIndx = (b: Uint8Array) =>
    b[0] === 0x49 && b[1] === 0x4e && b[2] === 0x44 && b[3] === 0x58;

  for (
    const ino of vol.walk({
      ...(options.onRecord ? { onRecord: options.onRecord } : {}),
      ...(options.onCorruptInode ? { onCorruptInode: options.onCorruptInode } : {}),
      ...(options.onCorruptAttributeList
        ? { onCorruptAttributeList: options.onCorruptAttributeList }
        : {}),
      ...(options.onOpenFailure ? { onOpenFailure: options.onOpenFailure } : {}),
      ...(options.onTornRecord ? { onTornRecord: options.onTornRecord } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      all: true,
    })
  ) {
    if (!ino.header.inUse) continue;
    if (ino.header.isExtent) {
      // ntfsclone opens every in-use record and counts it, then skips extents; a true extent
      // has no $STANDARD_INFORMATION and fails to open (silently, being no base record).
      let truncated = false;
      const attrs = parseAttributes(ino.bytes, ino.header, 0, {
        lenient: true,
        onTruncated: () => (truncated = true),
      });
      if (inodeOpenFailure(attrs, truncated) === undefined) stats.usedRecords++;
      continue;
    }
    stats.usedRecords++;
    // Scratch copies: the walk's own wipes are counted, never written (buffers reused).
    scratch.clear();
    let pooled = 0;
    const copyOf = (rec: number, b: Uint8Array) => {
      let c = scratch.get(rec);
      if (!c) {
        c = pool[pooled];
        if (!c || c.length !== b.length) pool[pooled] = c = new Uint8Array(b.length);
        pooled++;
        c.set(b);
        scratch.set(rec, c);
      }
      return c;
    };
    for (const w of ino.attributes) {
      const a = w.attr;
      if (!a.nonResident) {
        wipeResidentAttribute(copyOf(w.record, w.bytes), a, ino.inode, options, stats);
        continue;
      }
      let live: LiveIndexBlocks | undefined;
      if (!options.preserveTimestamps && a.type === AttrType.INDEX_ALLOCATION) {
        live = countLiveIndexBlocks(vol, ino, a.name, stats, options.onDamagedIndex);
      }
      const mftData = (ino.inode === SystemFile.MFT || ino.inode === SystemFile.MFT_MIRR) &&
        a.type === AttrType.DATA;
      const i30 = a.type === AttrType.INDEX_ALLOCATION && a.name === "$I30";
      for (const r of a.runs) {
        if (r.lcn === LCN_HOLE || mftData || i30) continue;
        const len = criticalLength(ino.inode, a.type, r, cs, full);
        if (len) copyRaw(r.lcn, len);
      }
      if (mftData && a.lowestVcn === 0) {
        const runs = ino.inode === SystemFile.MFT
          ? vol.mftRuns
          : fullRuns(ino, AttrType.DATA, a.name);
        const st = ino.inode === SystemFile.MFT ? mftStats : mirrorStats;
        copyWipe(runs, vol.mftRecordSize, (rec, n) => {
          if (isFile(rec)) wipeMftRecord(rec, n, options, st);
        }, "MFT record");
      }
      if (i30 && a.lowestVcn === 0) {
        const runs = fullRuns(ino, AttrType.INDEX_ALLOCATION, "$I30");
        const bs = vol.boot.indexRecordSize;
        if (!bitmapMode) {
          copyWipe(runs, bs, (rec) => {
            if (!options.preserveTimestamps && isIndx(rec)) {
              if (!wipeIndxBlock(rec, indexStats)) options.onDamagedIndex?.();
            }
          }, "directory index record");
        } else {
          // Sparse clone: the allocation as wiped in place (live blocks only).
          copyWipe(runs, bs, (rec, n) => {
            if (!live || live.damaged || !isLiveBlock(live, n)) return;
            wipeLiveBlock(rec, newWipeStats());
          }, "directory index record");
        }
      }
      if (ino.inode === SystemFile.LOG_FILE && a.type === AttrType.DATA) {
        for (const lcn of logfileProbes(a.runs, cs)) {
          if (lcn + 1 !== cur) copyRaw(lcn, 1);
          cur = lcn + 1;
        }
      }
    }
  }
  if (options.extra) {
    options.onExtra?.();
    if (cur !== 0) sink.gap(-cur);
    cur = 0;
    for (const e of options.extra) copyRaw(e.start, e.count);
    if (cur !== 0) sink.gap(-cur);
    cur = 0;
  }
  // The backup boot sector's cluster, cut at the device end.
  gapTo(nr);
  const tail = Math.min(cs, vol.source.size - nr * cs);
  if (tail > 0) {
    const b = new Uint8Array(tail);
    read(nr * cs, b);
    sink.clusters(nr, b);
  }
  cur = nr;
  return { walk: stats, mft: mftStats, mirror: mirrorStats, index: indexStats };
}
