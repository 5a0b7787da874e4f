/**
 * The NTFS walker: {@linkcode NtfsVolume.open} mounts a volume read-only over any
 * {@linkcode Source} (boot sector, the $MFT runlist including a fragmented $MFT with an
 * attribute list, the $MFTMirr cross-check, $Volume and $Bitmap), then
 * {@linkcode NtfsVolume.walk} enumerates inodes and their attribute records in libntfs's order
 * and {@linkcode NtfsVolume.scan} computes exactly the clusters ntfsclone copies.
 *
 * Memory follows metadata: the MFT is read in 1 MiB batches, clusters are kept as sorted
 * extent lists, and the $Bitmap cross-check streams the bitmap in chunks.
 *
 * @module
 */
import { CorruptImageError, LimitExceededError, ReadError } from "../errors.ts";
import { u16, u32, u8 } from "../_internal/bytes.ts";
import { type BlockExtent, BlockSetBuilder, mergeBlockExtents } from "../_internal/extents.ts";
import type { Source } from "../io/types.ts";
import { type NtfsBootSector, parseNtfsBootSector } from "./boot.ts";
import { describeInvalidUsa, describeTornRecord, undoFixups } from "./fixup.ts";
import {
  type AttrListEntry,
  AttrType,
  type MftRecordHeader,
  type NtfsAttribute,
  parseAttributeList,
  parseAttributes,
  parseMftRecordHeader,
  residentValue,
  strictRecordProblem,
} from "./record.ts";
import { LCN_HOLE, type NtfsRun } from "./runlist.ts";

/** Volume flag: the volume is dirty (VOLUME_IS_DIRTY in $VOLUME_INFORMATION). */
export const VOLUME_IS_DIRTY = 0x0001;

/** Record numbers of the NTFS system files. */
export const SystemFile = {
  MFT: 0,
  MFT_MIRR: 1,
  LOG_FILE: 2,
  VOLUME: 3,
  ATTR_DEF: 4,
  ROOT: 5,
  BITMAP: 6,
  BOOT: 7,
  BAD_CLUS: 8,
  SECURE: 9,
  UPCASE: 10,
  EXTEND: 11,
} as const;

/** Largest $ATTRIBUTE_LIST value read (NTFS caps it at 256 KiB). */
const MAX_ATTR_LIST = 256 * 1024;
/** Bytes of MFT read per batch. */
const MFT_BATCH = 1 << 20;

/** An attribute record met by the walk, with the MFT record that holds it. */
export interface NtfsWalkAttribute {
  /** Number of the MFT record holding the attribute record (the base or an extent). */
  record: number;
  /** That record's bytes, fixups undone. */
  bytes: Uint8Array;
  /** The attribute record. */
  attr: NtfsAttribute;
}

/** An inode met by {@linkcode NtfsVolume.walk}. */
export interface NtfsWalkInode {
  /** The MFT record number. */
  inode: number;
  /** The record's bytes, fixups undone. */
  bytes: Uint8Array;
  /** The record header. */
  header: MftRecordHeader;
  /** Extent records loaded through the attribute list: number → bytes (fixups undone). */
  extents: Map<number, Uint8Array>;
  /** Attribute records in ntfs_attrs_walk order (empty for deleted and extent records). */
  attributes: NtfsWalkAttribute[];
}

/** A cluster referenced by two attribute records. */
export interface NtfsDuplicate {
  /** The inode whose attribute record referenced it the second time. */
  inode: number;
  /** The attribute type. */
  type: number;
  /** First cluster of a run of duplicated clusters. */
  start: number;
  /** Number of clusters. */
  count: number;
  /** Position in walk order (attribute record index), for ordering. */
  order: number;
}

/** A difference between the walk and $Bitmap. */
export interface NtfsBitmapMismatch {
  /** The cluster. */
  cluster: number;
  /** "missing": used but clear in $Bitmap; "extra": set in $Bitmap but unreferenced. */
  kind: "missing" | "extra";
}

/** What {@linkcode NtfsVolume.scan} found: the input of every ntfsclone mode. */
export interface NtfsScan {
  /**
   * The clusters ntfsclone copies, sorted and merged: every non-hole run of every attribute
   * of every in-use inode, plus cluster `nrClusters` (the backup boot sector "cluster"),
   * minus the bad clusters of $BadClus:$Bad.
   */
  used: BlockExtent[];
  /** Number of clusters in use as ntfsclone counts them (the image header's inuse). */
  inuse: number;
  /** Clusters referenced twice, in walk order. */
  duplicates: NtfsDuplicate[];
  /** The first 10 $Bitmap mismatches in cluster order. */
  mismatches: NtfsBitmapMismatch[];
  /** The total number of mismatches. */
  mismatchCount: number;
  /** Clusters set in $Bitmap but referenced by nothing (copied under --ignore-fs-check). */
  extra: BlockExtent[];
  /** Set when $Bitmap is shorter than the volume needs: bytes found, bytes expected. */
  bitmapTooShort?: { found: number; expected: number };
  /** Number of clusters listed in $BadClus:$Bad. */
  badClusters: number;
  /** How many of those were referenced (and so subtracted from `inuse` and `used`). */
  badInUse: number;
  /**
   * Set when $BadClus:$Bad cannot be looked up as libntfs looks it up: the lines it logs and
   * the errno code of the failure (ntfsclone then exits after "Space in use").
   */
  badClusterError?: { lines: string[]; code: "EIO" | "ENOENT" };
  /** Number of MFT records walked. */
  recordCount: number;
}

/** Options of {@linkcode NtfsVolume.open}. */
export interface NtfsOpenOptions {
  /** Called with the lines libntfs logs while mounting (torn or invalid system records). */
  onLog?: (line: string) => void;
  /** libntfs seeks to the last sector first: return false when a seek to `offset` fails. */
  seekLastSector?: (offset: bigint) => boolean;
}

/** Options of {@linkcode NtfsVolume.walk}. */
export interface NtfsWalkOptions {
  /** Called before each MFT record number is examined (0 … recordCount - 1). */
  onRecord?: (record: number, last: number) => void;
  /** Also yield records that are not in use (`header.inUse` false) and extent records. */
  all?: boolean;
  /**
   * Called when an inode's attributes end early at a malformed attribute record (libntfs
   * logs `ntfs_attr_find: Corrupt inode (n)` and stops there too).
   */
  onCorruptInode?: (inode: number) => void;
  /**
   * Called when an inode's attribute list names a record or attribute that does not match
   * (libntfs logs `Corrupt attribute list entry in MFT record n`); its walk stops there.
   */
  onCorruptAttributeList?: (inode: number) => void;
  /** Called with libntfs's message when an inode cannot be opened (it is then skipped). */
  onOpenFailure?: (inode: number, message: string) => void;
  /** Called with libntfs's "Incomplete multi-sector transfer" line for a torn record. */
  onTornRecord?: (message: string) => void;
  /** Called with other lines libntfs logs while reading records ("Record n is corrupt"). */
  onLog?: (line: string) => void;
}

function corrupt(message: string, offset: number, structure: string, compat?: string): never {
  throw new CorruptImageError(`${message} (byte 0x${offset.toString(16)})`, {
    format: "ntfs",
    structure,
    offset,
    ...(compat ? { compat } : {}),
  });
}

/** The fields {@linkcode NtfsVolume.open} fills in after construction. */
interface Mutable {
  mftRuns: NtfsRun[];
  mftInitializedSize: number;
  majorVersion: number;
  minorVersion: number;
  volumeFlags: number;
  bitmapRuns: NtfsRun[];
  bitmapSize: number;
  bitmapInitialized: number;
}

/**
 * Why ntfs_inode_open would fail on a record with these attributes (`truncated`: the
 * enumeration met a malformed attribute record), or undefined when it opens. It looks up
 * $STANDARD_INFORMATION, $ATTRIBUTE_LIST and the unnamed $DATA in turn, each search running
 * until an attribute of a higher type: a malformed attribute met before one above $DATA, no
 * $STANDARD_INFORMATION first, or a short one fail the open. The message ("" when libntfs
 * logs nothing) has `#` for the record number.
 */
export function inodeOpenFailure(
  attrs: readonly NtfsAttribute[],
  truncated: boolean,
): string | undefined {
  const si = attrs.findIndex((a) => a.type >= AttrType.STANDARD_INFORMATION);
  // The lookup is for the unnamed attribute: a named one ends it (ENOENT).
  if (
    si < 0 || attrs[si]!.type !== AttrType.STANDARD_INFORMATION || attrs[si]!.name !== "" ||
    attrs[si]!.nameInvalid
  ) {
    return `No STANDARD_INFORMATION in base record #: ${
      truncated && si < 0 ? "Input/output error" : "No such file or directory"
    }`;
  }
  const siLength = attrs[si]!.declaredValueLength ?? attrs[si]!.valueLength;
  if (siLength < 0x30) {
    return "Corrupt STANDARD_INFORMATION in base record #";
  }
  if (truncated && !attrs.some((a) => a.type >= AttrType.DATA)) return "";
  return undefined;
}

/** Maps a VCN to a run index by binary search, or -1 when unmapped. */
function findRun(runs: readonly NtfsRun[], vcn: number): number {
  let lo = 0, hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid]!;
    if (vcn < r.vcn) hi = mid - 1;
    else if (vcn >= r.vcn + r.length) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/**
 * An NTFS volume opened read-only over a {@linkcode Source}.
 *
 * @example
 * ```ts ignore
 * import { openSource } from "../io/mod.ts";
 * import { NtfsVolume } from "./volume.ts";
 * const vol = NtfsVolume.open(openSource("ntfs.img"));
 * const scan = vol.scan();
 * console.log(vol.clusterSize, scan.inuse, scan.used);
 * ```
 */
export class NtfsVolume {
  /** The source. */
  readonly source: Source;
  /** The parsed boot sector. */
  readonly boot: NtfsBootSector;
  /** Cluster size in bytes. */
  readonly clusterSize: number;
  /** Number of clusters of the volume. */
  readonly nrClusters: number;
  /** MFT record size in bytes. */
  readonly mftRecordSize: number;
  /** The full runlist of $MFT:$DATA (all extents). */
  readonly mftRuns: NtfsRun[];
  /** $MFT:$DATA initialized_size. */
  readonly mftInitializedSize: number;
  /** NTFS major version ($VOLUME_INFORMATION). */
  readonly majorVersion: number;
  /** NTFS minor version. */
  readonly minorVersion: number;
  /** $VOLUME_INFORMATION flags. */
  readonly volumeFlags: number;
  /** $Bitmap:$DATA runlist. */
  readonly bitmapRuns: NtfsRun[];
  /** $Bitmap:$DATA data_size. */
  readonly bitmapSize: number;
  /** $Bitmap:$DATA initialized_size. */
  readonly bitmapInitialized: number;

  #log?: (line: string) => void;
  /** Set by {@linkcode NtfsVolume.#lenientParse} when a record's attributes end early. */
  #truncated = false;
  /** The walk's parse options, made once (the walk parses every record with them). */
  readonly #lenientParse: {
    lenient: true;
    onTruncated: () => void;
    clusterSize: number;
  };

  private constructor(source: Source, boot: NtfsBootSector) {
    this.#lenientParse = {
      lenient: true,
      onTruncated: () => {
        this.#truncated = true;
      },
      clusterSize: boot.clusterSize,
    };
    this.source = source;
    this.boot = boot;
    this.clusterSize = boot.clusterSize;
    this.nrClusters = boot.nrClusters;
    this.mftRecordSize = boot.mftRecordSize;
    this.mftRuns = [];
    this.mftInitializedSize = 0;
    this.majorVersion = 0;
    this.minorVersion = 0;
    this.volumeFlags = 0;
    this.bitmapRuns = [];
    this.bitmapSize = 0;
    this.bitmapInitialized = 0;
  }

  /** Number of MFT records: $MFT initialized_size / record size. */
  get recordCount(): number {
    return Math.floor(this.mftInitializedSize / this.mftRecordSize);
  }

  /** True when the dirty flag is set. */
  get dirty(): boolean {
    return (this.volumeFlags & VOLUME_IS_DIRTY) !== 0;
  }

  /** The number of records $MFTMirr holds (4, or one cluster's worth when larger). */
  get mftMirrorRecords(): number {
    return this.clusterSize <= 4 * this.mftRecordSize ? 4 : this.clusterSize / this.mftRecordSize;
  }

  /**
   * Opens (mounts read-only) the NTFS volume in `source`, with libntfs's checks. Throws
   * {@linkcode CorruptImageError} (with libntfs's message in `details.compat` where it has
   * one) or {@linkcode ReadError}.
   */
  static open(source: Source, options: NtfsOpenOptions = {}): NtfsVolume {
    const bs = new Uint8Array(512);
    const n = source.readAt(0, bs);
    if (n < 512) {
      corrupt(
        `Cannot read NTFS boot sector: the source holds only ${n} bytes`,
        0,
        "boot sector",
        "NTFS signature is missing.",
      );
    }
    const boot = parseNtfsBootSector(
      bs,
      options.seekLastSector ? { seekLastSector: options.seekLastSector } : {},
    );
    const v = new NtfsVolume(source, boot);
    v.#log = options.onLog;
    v.#loadMft();
    v.#checkSystemRecord(
      SystemFile.MFT_MIRR,
      "Failed to open inode $MFTMirr: Input/output error\nFailed to load $MFTMirr",
    );
    v.#checkMirror();
    // The system files libntfs opens while mounting, in its order, with its full record check.
    for (
      const [n, what] of [
        [SystemFile.BITMAP, "Failed to open inode FILE_Bitmap"],
        [SystemFile.UPCASE, "Failed to open inode FILE_UpCase"],
        [SystemFile.VOLUME, "Failed to open inode FILE_Volume"],
        [SystemFile.ATTR_DEF, "Failed to open $AttrDef"],
      ] as const
    ) v.#checkSystemRecord(n, what);
    v.#loadVolumeInfo();
    v.#loadBitmap();
    v.#checkSystemRecord(SystemFile.SECURE, "Failed to open $Secure");
    return v;
  }

  #mutable(): Mutable {
    return this as unknown as Mutable;
  }

  /** Reads `buf.length` bytes at cluster-relative `offset` of an attribute with `runs`. */
  readRuns(runs: readonly NtfsRun[], offset: number, buf: Uint8Array): boolean {
    const cs = this.clusterSize;
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const vcn = Math.floor(pos / cs);
      const i = findRun(runs, vcn);
      if (i < 0) return false;
      const r = runs[i]!;
      const runEnd = (r.vcn + r.length) * cs;
      const len = Math.min(buf.length - done, runEnd - pos);
      const part = buf.subarray(done, done + len);
      if (r.lcn === LCN_HOLE) part.fill(0);
      else {
        const at = (r.lcn + (vcn - r.vcn)) * cs + (pos % cs);
        const got = this.source.readAt(at, part);
        if (got < len) {
          throw new ReadError(this.source.name, at + got, len - got, "Input/output error");
        }
      }
      done += len;
    }
    return true;
  }

  /** Reads MFT record `n` through $MFT's runlist and undoes its fixups; undefined if unusable. */
  readRecord(
    n: number,
    lenient = false,
  ): { bytes: Uint8Array; header: MftRecordHeader } | undefined {
    const rs = this.mftRecordSize;
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.recordCount) return undefined;
    const b = new Uint8Array(rs);
    if (!this.readRuns(this.mftRuns, n * rs, b)) return undefined;
    // As libntfs: a torn record is unusable ("BAAD"), one with an invalid update sequence
    // array is used as read.
    if (undoFixups(b) === "torn") return undefined;
    const h = parseMftRecordHeader(b, this.#recordOffset(n), { lenient });
    return h ? { bytes: b, header: h } : undefined;
  }

  #recordOffset(n: number): number {
    const pos = n * this.mftRecordSize;
    const i = findRun(this.mftRuns, Math.floor(pos / this.clusterSize));
    const r = this.mftRuns[i];
    if (!r || r.lcn < 0) return 0;
    return (r.lcn + Math.floor(pos / this.clusterSize) - r.vcn) * this.clusterSize +
      pos % this.clusterSize;
  }

  #loadMft(): void {
    const rs = this.mftRecordSize, cs = this.clusterSize;
    const at = this.boot.mftLcn * cs;
    const b = new Uint8Array(rs);
    if (this.source.readAt(at, b) < rs) {
      throw new ReadError(this.source.name, at, rs, "Input/output error");
    }
    const problem0 = this.#strictCheck(0, b);
    if (problem0) {
      corrupt(
        `Cannot mount NTFS: ${problem0}`,
        at,
        "MFT record 0",
        `${problem0}\nFailed to load $MFT: Input/output error`,
      );
    }
    if (undoFixups(b) !== "ok") {
      corrupt(
        "Cannot read $MFT: record 0 is damaged",
        at,
        "MFT record 0",
        "Failed to load $MFT: Input/output error",
      );
    }
    const h = parseMftRecordHeader(b, at);
    if (!h || !h.inUse) {
      corrupt(
        "Cannot read $MFT: record 0 is not an in-use FILE record",
        at,
        "MFT record 0",
        "Failed to load $MFT: Input/output error",
      );
    }
    const attrs = parseAttributes(b, h, at);
    const data = attrs.find((a) => a.type === AttrType.DATA && a.name === "" && a.lowestVcn === 0);
    if (!data || !data.nonResident) {
      corrupt(
        "Cannot read $MFT: no non-resident $DATA in record 0",
        at,
        "MFT record 0",
        "Failed to load $MFT: Input/output error",
      );
    }
    const m = this.#mutable();
    m.mftRuns = data.runs.slice();
    m.mftInitializedSize = data.initializedSize;
    if (data.initializedSize > data.allocatedSize || data.initializedSize < 16 * rs) {
      corrupt(
        `Cannot read $MFT: initialized_size ${data.initializedSize} is invalid`,
        at + data.offset + 56,
        "MFT record 0",
        "Failed to load $MFT: Input/output error",
      );
    }
    // A fragmented $MFT keeps further $DATA extents in extent records named by its list.
    const list = attrs.find((a) => a.type === AttrType.ATTRIBUTE_LIST);
    if (list) {
      const entries = this.#readAttrList(b, list, at)
        .filter((e) => e.type === AttrType.DATA && e.name === "" && e.record !== 0)
        .sort((x, y) => x.lowestVcn - y.lowestVcn);
      for (const e of entries) {
        const ext = this.readRecord(e.record);
        if (!ext) {
          corrupt(
            `Cannot read $MFT: extent record ${e.record} is unreadable`,
            at,
            "MFT record 0",
            "Failed to load $MFT: Input/output error",
          );
        }
        const ea = parseAttributes(ext.bytes, ext.header, this.#recordOffset(e.record))
          .find((a) => a.type === AttrType.DATA && a.name === "" && a.lowestVcn === e.lowestVcn);
        if (!ea || !ea.nonResident) {
          corrupt(
            `Cannot read $MFT: extent record ${e.record} lacks $DATA`,
            at,
            "MFT record 0",
            "Failed to load $MFT: Input/output error",
          );
        }
        const last = m.mftRuns[m.mftRuns.length - 1];
        if (last && ea.lowestVcn !== last.vcn + last.length) {
          corrupt(
            `Cannot read $MFT: extent at VCN ${ea.lowestVcn} does not follow VCN ${
              last.vcn + last.length
            }`,
            at,
            "MFT record 0",
            "Failed to load $MFT: Input/output error",
          );
        }
        m.mftRuns.push(...ea.runs);
      }
    }
    const mapped = m.mftRuns.reduce((s, r) => s + r.length, 0) * cs;
    for (const r of m.mftRuns) {
      if (r.lcn !== LCN_HOLE && r.lcn + r.length > this.nrClusters) {
        corrupt(
          `Cannot read $MFT: run at LCN ${r.lcn} passes the end of the volume`,
          at,
          "MFT record 0",
          "Failed to load $MFT: Input/output error",
        );
      }
    }
    if (m.mftInitializedSize > mapped) m.mftInitializedSize = mapped;
  }

  #readAttrList(rec: Uint8Array, a: NtfsAttribute, base: number): AttrListEntry[] {
    if (!a.nonResident) return parseAttributeList(residentValue(rec, a), base + a.valueOffset);
    if (a.dataSize > MAX_ATTR_LIST) {
      throw new LimitExceededError(
        `NTFS attribute list of ${a.dataSize} bytes exceeds the cap of ${MAX_ATTR_LIST}`,
      );
    }
    const v = new Uint8Array(a.dataSize);
    if (!this.readRuns(a.runs, 0, v)) {
      corrupt(
        "Cannot read NTFS attribute list: runlist too short",
        base + a.offset,
        "attribute list",
      );
    }
    return parseAttributeList(v, 0);
  }

  /** Logs what libntfs's mount-time read of a raw record prints (torn or invalid array). */
  #logRead(raw: Uint8Array): void {
    const torn = describeTornRecord(raw);
    if (torn) this.#log?.(`${torn}: Input/output error`);
    const invalid = describeInvalidUsa(raw);
    if (invalid) this.#log?.(`${invalid}: Invalid argument`);
  }

  /** Reads record `n` raw and applies libntfs's full record check. */
  #strictCheck(n: number, bytes?: Uint8Array): string | undefined {
    let b = bytes;
    if (!b) {
      b = new Uint8Array(this.mftRecordSize);
      if (!this.readRuns(this.mftRuns, n * this.mftRecordSize, b)) return `Record ${n} is corrupt`;
      this.#logRead(b);
    }
    b = b.slice();
    if (undoFixups(b) === "torn") b.set([0x42, 0x41, 0x41, 0x44]);
    return strictRecordProblem(b, n);
  }

  #checkSystemRecord(n: number, what: string): void {
    const problem = this.#strictCheck(n);
    if (problem) {
      corrupt(
        `Cannot mount NTFS: ${problem}`,
        this.#recordOffset(n),
        `MFT record ${n}`,
        `${problem}\n${what}: Input/output error`,
      );
    }
  }

  #checkMirror(): void {
    const rs = this.mftRecordSize, cs = this.clusterSize;
    const count = this.mftMirrorRecords;
    const at = this.boot.mftMirrLcn * cs;
    const mirror = new Uint8Array(count * rs);
    const got = this.source.readAt(at, mirror);
    if (got < mirror.length) {
      throw new ReadError(this.source.name, at + got, mirror.length - got, "Input/output error");
    }
    const mainRaw = new Uint8Array(count * rs);
    if (!this.readRuns(this.mftRuns, 0, mainRaw)) {
      corrupt("$MFT is too short for $MFTMirr", at, "MFT record 0", "Failed to read $MFT");
    }
    for (let i = 0; i < count; i++) this.#logRead(mainRaw.subarray(i * rs, (i + 1) * rs));
    for (let i = 0; i < Math.min(count, 16); i++) {
      const problem = this.#strictCheck(i, mainRaw.subarray(i * rs, (i + 1) * rs));
      if (problem) {
        corrupt(`Cannot mount NTFS: ${problem}`, this.#recordOffset(i), `MFT record ${i}`, problem);
      }
    }
    for (let i = 0; i < count; i++) this.#logRead(mirror.subarray(i * rs, (i + 1) * rs));
    for (let i = 0; i < Math.min(count, 16); i++) {
      const problem = this.#strictCheck(i, mirror.subarray(i * rs, (i + 1) * rs));
      if (problem) {
        corrupt(`Cannot mount NTFS: ${problem}`, at + i * rs, `MFT record ${i}`, problem);
      }
    }
    for (let i = 0; i < count; i++) {
      const mr = mirror.subarray(i * rs, (i + 1) * rs);
      const main = new Uint8Array(rs);
      if (!this.readRuns(this.mftRuns, i * rs, main)) {
        corrupt(
          `$MFT is too short for record ${i}`,
          at,
          "MFT record 0",
          "Failed to read $MFT: Input/output error",
        );
      }
      const okA = undoFixups(main) !== "torn", okB = undoFixups(mr) !== "torn";
      const h = okA ? parseMftRecordHeader(main) : undefined;
      if (!h) {
        if (i < 4) {
          corrupt(
            `$MFT record ${i} is damaged`,
            this.#recordOffset(i),
            `MFT record ${i}`,
            `$MFT error: Invalid mft record for record ${i}`,
          );
        }
        continue;
      }
      const hb = okB ? parseMftRecordHeader(mr) : undefined;
      if (!hb) {
        corrupt(
          `$MFTMirr record ${i} is damaged`,
          at + i * rs,
          `MFT record ${i}`,
          `$MFTMirr error: Invalid mft record for record ${i}`,
        );
      }
      const len = Math.min(h.bytesInUse, rs);
      for (let j = 0; j < len; j++) {
        if (main[j] !== mr[j]) {
          corrupt(
            `$MFTMirr does not match $MFT (record ${i})`,
            at + i * rs + j,
            `MFT record ${i}`,
            `$MFTMirr does not match $MFT (record ${i}).`,
          );
        }
      }
    }
  }

  #loadVolumeInfo(): void {
    const r = this.readRecord(SystemFile.VOLUME);
    const off = this.#recordOffset(SystemFile.VOLUME);
    if (!r || !r.header.inUse) {
      corrupt(
        "Cannot read $Volume: record 3 is unusable",
        off,
        "MFT record 3",
        "Failed to open inode FILE_Volume: Input/output error",
      );
    }
    const attrs = parseAttributes(r.bytes, r.header, off);
    const vi = attrs.find((a) => a.type === AttrType.VOLUME_INFORMATION && !a.nonResident);
    if (!vi || vi.valueLength < 12) {
      corrupt(
        "Cannot read $Volume: no $VOLUME_INFORMATION",
        off,
        "MFT record 3",
        "$VOLUME_INFORMATION attribute not found in $Volume: Input/output error",
      );
    }
    const m = this.#mutable();
    m.majorVersion = u8(r.bytes, vi.valueOffset + 8);
    m.minorVersion = u8(r.bytes, vi.valueOffset + 9);
    m.volumeFlags = u16(r.bytes, vi.valueOffset + 10);
  }

  #loadBitmap(): void {
    const r = this.readRecord(SystemFile.BITMAP);
    const off = this.#recordOffset(SystemFile.BITMAP);
    if (!r || !r.header.inUse) {
      corrupt(
        "Cannot read $Bitmap: record 6 is unusable",
        off,
        "MFT record 6",
        "Failed to open inode FILE_Bitmap: Input/output error",
      );
    }
    const attrs = parseAttributes(r.bytes, r.header, off);
    const d = attrs.find((a) =>
      a.type === AttrType.DATA && a.name === "" && a.nonResident && a.lowestVcn === 0
    );
    if (!d) {
      corrupt(
        "Cannot read $Bitmap: no non-resident $DATA",
        off,
        "MFT record 6",
        "Failed to open ntfs attribute: Input/output error",
      );
    }
    const m = this.#mutable();
    m.bitmapRuns = d.runs;
    m.bitmapSize = d.dataSize;
    m.bitmapInitialized = Math.min(d.initializedSize, d.dataSize);
    const mapped = d.runs.reduce((s, x) => s + x.length, 0) * this.clusterSize;
    if (m.bitmapSize > mapped) {
      corrupt(
        `Cannot read $Bitmap: data_size ${d.dataSize} exceeds its runlist`,
        off + d.offset + 48,
        "MFT record 6",
      );
    }
  }

  /**
   * Walks the MFT records 0 … recordCount - 1 as ntfsclone does: records that fail their
   * fixups, are not "FILE" or have the wrong size are skipped; by default only in-use base
   * records are yielded, with their attribute records in ntfs_attrs_walk order (physical
   * order, or the $ATTRIBUTE_LIST order with the list itself placed before the first entry
   * of a type above 0x20). Inodes whose attribute list cannot be resolved are skipped, as
   * libntfs fails to open them.
   */
  *walk(options: NtfsWalkOptions = {}): Generator<NtfsWalkInode> {
    const rs = this.mftRecordSize;
    const count = this.recordCount;
    const last = count - 1;
    const perBatch = Math.max(1, Math.floor(MFT_BATCH / rs));
    for (let first = 0; first < count; first += perBatch) {
      const n = Math.min(perBatch, count - first);
      // A fresh buffer per batch: the records yielded are views into it (fixups undone in
      // place), so a caller may keep them, and no record costs an allocation of its own.
      const buf = new Uint8Array(n * rs);
      let mapped = true;
      try {
        mapped = this.readRuns(this.mftRuns, first * rs, buf);
      } catch (e) {
        if (!(e instanceof ReadError)) throw e;
        mapped = false;
      }
      for (let k = 0; k < n; k++) {
        const ino = first + k;
        options.onRecord?.(ino, last);
        let rec: Uint8Array;
        if (mapped) rec = buf.subarray(k * rs, (k + 1) * rs);
        else {
          const b = new Uint8Array(rs);
          try {
            if (!this.readRuns(this.mftRuns, ino * rs, b)) continue;
          } catch (e) {
            if (e instanceof ReadError) continue;
            throw e;
          }
          rec = b;
        }
        if (undoFixups(rec) === "torn") {
          // undoFixups leaves a torn record as read: describe it now.
          const torn = describeTornRecord(rec);
          if (torn) options.onTornRecord?.(torn);
          continue;
        }
        const base = this.#recordOffset(ino);
        let header: MftRecordHeader | undefined;
        try {
          header = parseMftRecordHeader(rec, base, { lenient: true });
        } catch (e) {
          if (e instanceof CorruptImageError) continue;
          throw e;
        }
        if (!header) {
          // ntfs_mft_record_check's complaints that its scan mode still prints.
          const alloc = u32(rec, 0x1c), attrs = u16(rec, 0x14), rs = rec.length;
          if (u32(rec, 0) === 0x454c4946) {
            if (alloc !== rs) {
              options.onLog?.(`Record ${ino} has corrupt allocation size (${rs} <> ${alloc})`);
            } else if (attrs & 7) options.onLog?.(`Attributes badly aligned in record ${ino}`);
            else if (attrs > rs) options.onLog?.(`Record ${ino} is corrupt`);
          }
          continue;
        }
        const bytes = rec;
        if (!header.inUse || header.isExtent) {
          if (options.all) yield { inode: ino, bytes, header, extents: new Map(), attributes: [] };
          continue;
        }
        const inode = this.#openInode(ino, bytes, header, base, options);
        if (inode) yield inode;
      }
    }
  }

  #openInode(
    ino: number,
    bytes: Uint8Array,
    header: MftRecordHeader,
    base: number,
    options: NtfsWalkOptions,
  ): NtfsWalkInode | undefined {
    const onCorrupt = options.onCorruptInode;
    const onCorruptList = options.onCorruptAttributeList;
    // libntfs logs "Corrupt inode" when a lookup or the walk actually reaches the malformed
    // attribute: in ntfs_inode_open's lookups, or after every attribute before it was walked.
    this.#truncated = false;
    const attrs = parseAttributes(bytes, header, base, this.#lenientParse);
    const truncated = this.#truncated;
    const onTruncated = () => onCorrupt?.(ino);
    const failure = inodeOpenFailure(attrs, truncated);
    if (failure !== undefined) {
      const lookupHit = truncated && !attrs.some((a) => a.type >= AttrType.DATA);
      if (lookupHit) onTruncated();
      if (failure) options.onOpenFailure?.(ino, failure.replace("#", String(ino)));
      return undefined;
    }
    const extents = new Map<number, Uint8Array>();
    const list = attrs.find((a) => a.type === AttrType.ATTRIBUTE_LIST);
    if (!list) {
      for (const a of attrs) if (a.runlistError) throw a.runlistError;
      if (truncated) onTruncated();
      return {
        inode: ino,
        bytes,
        header,
        extents,
        attributes: attrs.map((attr) => ({ record: ino, bytes, attr })),
      };
    }
    let entries: AttrListEntry[];
    try {
      entries = this.#readAttrList(bytes, list, base);
    } catch (e) {
      if (e instanceof CorruptImageError || e instanceof ReadError) return undefined;
      throw e;
    }
    const parsed = new Map<number, NtfsAttribute[]>([[ino, attrs]]);
    const out: NtfsWalkAttribute[] = [];
    let listPlaced = false;
    for (const e of entries) {
      if (!listPlaced && e.type > AttrType.ATTRIBUTE_LIST) {
        out.push({ record: ino, bytes, attr: list });
        listPlaced = true;
      }
      let recAttrs = parsed.get(e.record);
      let recBytes = e.record === ino ? bytes : extents.get(e.record);
      if (!recAttrs) {
        const x = this.readRecord(e.record, true);
        if (!x || !x.header.inUse || !x.header.isExtent || x.header.baseRecord !== ino) {
          onCorruptList?.(ino);
          break;
        }
        recBytes = x.bytes;
        extents.set(e.record, x.bytes);
        recAttrs = parseAttributes(x.bytes, x.header, this.#recordOffset(e.record), {
          lenient: true,
          onTruncated,
          clusterSize: this.clusterSize,
        });
        parsed.set(e.record, recAttrs);
      }
      // As libntfs: the record's attribute with the entry's instance number; none means the
      // entry is passed over, a different type or name means a corrupt list (the walk stops).
      const a = recAttrs.find((x) => x.instance === e.instance);
      if (!a) continue;
      if (a.type !== e.type || a.name !== e.name) {
        onCorruptList?.(ino);
        break;
      }
      out.push({ record: e.record, bytes: recBytes!, attr: a });
    }
    if (!listPlaced) out.push({ record: ino, bytes, attr: list });
    for (const w of out) if (w.attr.runlistError) throw w.attr.runlistError;
    if (truncated) onTruncated();
    return { inode: ino, bytes, header, extents, attributes: out };
  }

  /**
   * Computes the clusters ntfsclone copies (see {@linkcode NtfsScan}): walks every in-use
   * inode, detects clusters referenced twice, cross-checks the result against $Bitmap and
   * drops the bad clusters.
   */
  scan(
    options:
      & Pick<
        NtfsWalkOptions,
        | "onRecord"
        | "onCorruptInode"
        | "onCorruptAttributeList"
        | "onOpenFailure"
        | "onTornRecord"
        | "onLog"
      >
      & {
        /**
         * Called with every inode the walk yields, before its runs are counted: lets a caller
         * compute more per-inode totals in the same pass (the walk is the scan's main cost).
         */
        onInode?: (inode: NtfsWalkInode) => void;
      } = {},
  ): NtfsScan {
    interface R {
      start: number;
      count: number;
      order: number;
      inode: number;
      type: number;
    }
    const runs: R[] = [];
    const bad: BlockExtent[] = [];
    let inuse = 0;
    let order = 0;
    const nr = this.nrClusters;
    let badClus: NtfsWalkInode | undefined;
    const onInode = options.onInode;
    for (const ino of this.walk(options)) {
      onInode?.(ino);
      if (ino.inode === SystemFile.BAD_CLUS) badClus = ino;
      for (const wa of ino.attributes) {
        const a = wa.attr;
        order++;
        if (!a.nonResident) continue;
        for (const r of a.runs) {
          if (r.lcn === LCN_HOLE) continue;
          if (r.lcn + r.length > nr) {
            corrupt(
              `Cannot read NTFS inode ${ino.inode}: attribute 0x${
                a.type.toString(16)
              } run at LCN ${r.lcn} (${r.length} clusters) passes the end of the volume (${nr} clusters)`,
              this.#recordOffset(wa.record) + a.offset,
              `MFT record ${wa.record}`,
              `Corrupt runlist in inode ${ino.inode} attr ${a.type.toString(16)} LCN ${
                r.lcn.toString(16)
              } length ${r.length.toString(16)}`,
            );
          }
          runs.push({ start: r.lcn, count: r.length, order, inode: ino.inode, type: a.type });
          inuse += r.length;
        }
      }
    }
    // ignore_bad_clusters: libntfs's named lookup of $BadClus:$Bad in the base record.
    let badClusterError: NtfsScan["badClusterError"];
    const badLookup = lookupBad(badClus);
    if ("error" in badLookup) badClusterError = badLookup.error;
    else {
      for (const r of badLookup.runs) {
        if (r.lcn !== LCN_HOLE && r.lcn >= 0) bad.push({ start: r.lcn, count: r.length });
      }
    }
    const duplicates = findDuplicates(runs);
    // Every referenced cluster plus the backup boot sector "cluster".
    const b = new BlockSetBuilder();
    const sorted = runs.slice().sort((x, y) => x.start - y.start);
    for (const r of sorted) b.addRange(r.start, r.count);
    b.addRange(nr, 1);
    const referenced = b.build();
    const cmp = this.#compareBitmap(referenced);
    // Bad clusters are treated as free.
    const badMerged = mergeBlockExtents(bad);
    let badCount = 0;
    for (const x of bad) badCount += x.count;
    const badInUse = intersectCount(referenced, badMerged);
    inuse -= badInUse;
    const used = subtractExtents(referenced, badMerged);
    return {
      used,
      inuse,
      duplicates,
      ...cmp,
      badClusters: badCount,
      badInUse,
      ...(badClusterError ? { badClusterError } : {}),
      recordCount: this.recordCount,
    };
  }

  #compareBitmap(referenced: readonly BlockExtent[]): Pick<
    NtfsScan,
    "mismatches" | "mismatchCount" | "extra" | "bitmapTooShort"
  > {
    const nr = this.nrClusters;
    const size = Math.ceil((nr + 1) / 8); // internal bitmap bytes, backup cluster included
    const limit = Math.min(size, this.bitmapSize);
    const mismatches: NtfsBitmapMismatch[] = [];
    let mismatchCount = 0;
    const extra = new BlockSetBuilder();
    const CHUNK = 1 << 20;
    const disk = new Uint8Array(Math.min(CHUNK, Math.max(limit, 1)));
    const mine = new Uint8Array(disk.length);
    let ri = 0;
    for (let pos = 0; pos < limit; pos += disk.length) {
      const len = Math.min(disk.length, limit - pos);
      const d = disk.subarray(0, len), m = mine.subarray(0, len);
      // Bytes past initialized_size read as zero.
      d.fill(0);
      const initLen = Math.max(0, Math.min(len, this.bitmapInitialized - pos));
      if (initLen > 0) this.readRuns(this.bitmapRuns, pos, d.subarray(0, initLen));
      // Expected bits from the referenced extents (plus the padding bits past nr).
      m.fill(0);
      const c0 = pos * 8, c1 = (pos + len) * 8;
      while (ri > 0 && referenced[ri - 1]!.start + referenced[ri - 1]!.count > c0) ri--;
      for (let i = ri; i < referenced.length; i++) {
        const e = referenced[i]!;
        if (e.start >= c1) break;
        const s = Math.max(e.start, c0), t = Math.min(e.start + e.count, c1);
        setBits(m, s - c0, t - c0);
        ri = i;
      }
      if (c1 > nr) setBits(m, Math.max(nr, c0) - c0, c1 - c0);
      for (let i = 0; i < len; i++) {
        if (m[i] === d[i]) continue;
        for (let bit = 0; bit < 8; bit++) {
          const mb = (m[i]! >> bit) & 1, db = (d[i]! >> bit) & 1;
          if (mb === db) continue;
          const cl = c0 + i * 8 + bit;
          if (!mb) extra.add(cl);
          mismatchCount++;
          if (mismatches.length < 10) {
            mismatches.push({ cluster: cl, kind: mb ? "missing" : "extra" });
          }
        }
      }
    }
    const r: Pick<NtfsScan, "mismatches" | "mismatchCount" | "extra" | "bitmapTooShort"> = {
      mismatches,
      mismatchCount,
      extra: extra.build(),
    };
    if (this.bitmapSize < size && Math.ceil(nr / 8) > this.bitmapSize) {
      r.bitmapTooShort = { found: this.bitmapSize, expected: size };
    }
    return r;
  }
}

/** libntfs's named lookup of the $DATA named "$Bad" in $BadClus's record. */
function lookupBad(
  ino: NtfsWalkInode | undefined,
): { runs: NtfsRun[] } | { error: NonNullable<NtfsScan["badClusterError"]> } {
  if (!ino) return { error: { lines: [], code: "EIO" } };
  const want = "$BAD";
  const runs: NtfsRun[] = [];
  let found = false;
  // The base record, physically; extents of $Bad (lowest VCN > 0) through the walk.
  for (const w of ino.attributes.filter((x) => x.record === ino.inode)) {
    const a = w.attr;
    if (a.type < AttrType.DATA) continue;
    if (a.type > AttrType.DATA) break;
    if (a.nameInvalid) {
      return {
        error: {
          lines: [
            `Corrupt attribute name in MFT record ${ino.inode}`,
            `ntfs_attr_find: Corrupt inode (${ino.inode}): Input/output error`,
          ],
          code: "EIO",
        },
      };
    }
    const up = a.name.toUpperCase();
    if (a.name === "$Bad") {
      found = true;
      break;
    }
    if (a.name && want < up) break;
  }
  if (!found) return { error: { lines: [], code: "ENOENT" } };
  for (const w of ino.attributes) {
    if (w.attr.type === AttrType.DATA && w.attr.name === "$Bad" && w.attr.nonResident) {
      runs.push(...w.attr.runs);
    }
  }
  return { runs };
}

function setBits(m: Uint8Array, from: number, to: number): void {
  for (let b = from; b < to;) {
    if ((b & 7) === 0 && b + 8 <= to) {
      m[b >> 3] = 0xff;
      b += 8;
    } else {
      m[b >> 3]! |= 1 << (b & 7);
      b++;
    }
  }
}

/** Counts clusters in both sorted, merged lists. */
function intersectCount(a: readonly BlockExtent[], b: readonly BlockExtent[]): number {
  let i = 0, j = 0, n = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!, y = b[j]!;
    const s = Math.max(x.start, y.start), e = Math.min(x.start + x.count, y.start + y.count);
    if (e > s) n += e - s;
    if (x.start + x.count < y.start + y.count) i++;
    else j++;
  }
  return n;
}

/** `a` minus `b`, both sorted and merged. */
export function subtractExtents(
  a: readonly BlockExtent[],
  b: readonly BlockExtent[],
): BlockExtent[] {
  if (!b.length) return a.map((e) => ({ ...e }));
  const out: BlockExtent[] = [];
  let j = 0;
  for (const e of a) {
    let s = e.start;
    const end = e.start + e.count;
    while (j < b.length && b[j]!.start + b[j]!.count <= s) j++;
    let k = j;
    while (k < b.length && b[k]!.start < end) {
      const y = b[k]!;
      if (y.start > s) out.push({ start: s, count: y.start - s });
      s = Math.max(s, y.start + y.count);
      k++;
    }
    if (s < end) out.push({ start: s, count: end - s });
  }
  return out;
}

/**
 * Finds the clusters referenced more than once, reported as libntfs's test-and-set walk meets
 * them: a cluster of run k is a duplicate when a run earlier in walk order covers it.
 */
function findDuplicates(
  runs: readonly { start: number; count: number; order: number; inode: number; type: number }[],
): NtfsDuplicate[] {
  const idx = runs.map((_, i) => i).sort((x, y) => runs[x]!.start - runs[y]!.start || x - y);
  const out: NtfsDuplicate[] = [];
  let g = 0;
  while (g < idx.length) {
    // A group of runs chained by overlaps.
    let end = runs[idx[g]!]!.start + runs[idx[g]!]!.count;
    let h = g + 1;
    while (h < idx.length && runs[idx[h]!]!.start < end) {
      end = Math.max(end, runs[idx[h]!]!.start + runs[idx[h]!]!.count);
      h++;
    }
    if (h - g > 1) {
      const group = idx.slice(g, h).sort((x, y) => x - y); // walk order
      const seen: BlockExtent[] = []; // sorted, merged
      for (const i of group) {
        const r = runs[i]!;
        for (const s of seen) {
          const a = Math.max(s.start, r.start), b = Math.min(s.start + s.count, r.start + r.count);
          if (b > a) out.push({ inode: r.inode, type: r.type, start: a, count: b - a, order: i });
        }
        seen.push({ start: r.start, count: r.count });
        const merged = mergeBlockExtents(seen);
        seen.length = 0;
        seen.push(...merged);
      }
    }
    g = h;
  }
  out.sort((x, y) => x.order - y.order || x.start - y.start);
  return out;
}
