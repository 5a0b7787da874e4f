/**
 * The one walk behind {@linkcode auditNtfs} and {@linkcode scrubNtfs}. Pass 1 collects every
 * $FILE_NAME (and $UpCase); names are then given scrambled replacements of the same length
 * that keep each directory's collation order, so the B+tree indexes stay valid. Pass 2
 * rewrites the MFT records (names, resident user data, named streams, symlink targets, the
 * label, deleted records, slack) with fixups redone and $MFTMirr kept equal; pass 3 rewrites
 * the $I30 index blocks; pass 4 empties $LogFile log pages and user data clusters.
 *
 * @module
 */
import { CorruptImageError, ReadError } from "../errors.ts";
import type { Source } from "../io/types.ts";
import { isZero, put16, put32, u16, u32 } from "../_internal/bytes.ts";
import { type FindingCollector, printableRun, type PrivacyWriter } from "../_internal/privacy.ts";
import { protectFixups, undoFixups } from "./fixup.ts";
import {
  AttrType,
  type MftRecordHeader,
  type NtfsAttribute,
  parseAttributes,
  parseMftRecordHeader,
  residentValue,
} from "./record.ts";
import { LCN_HOLE, type NtfsRun } from "./runlist.ts";
import { type NtfsVolume, SystemFile } from "./volume.ts";

export type { PrivacyWriter };

/** Options of the NTFS privacy walk. */
export interface NtfsPrivacyWalkOptions {
  /** Scrub: also zero the non-resident data of user files (default true). */
  wipeData?: boolean;
  /** Also read (audit) and zero (scrub) the clusters $Bitmap marks free (default false). */
  freeSpace?: boolean;
}

/** Counters of what the scrub had to repair or could not do. */
export interface NtfsScrubCounts {
  /** MFT records written back. */
  recordsWritten: number;
  /** Index blocks written back. */
  indexBlocksWritten: number;
  /** In-use MFT records whose attributes do not parse (left as they are). */
  unreadableRecords: number;
  /** Names that could not get an order-keeping scrambled name (the order may be off). */
  orderViolations: number;
}

const FIRST_USER_RECORD = 16;
const INTERIX_MAGIC = [0x49, 0x6e, 0x74, 0x78, 0x4c, 0x4e, 0x4b, 0x01]; // "IntxLNK\1"
const MAX_RUN_BYTES = 1 << 20;
const LOG_PAGE = 4096;

interface NameRef {
  /** The file's base record. */
  file: number;
  /** The parent directory's record. */
  parent: number;
  /** Namespace (0 POSIX, 1 Win32, 2 DOS, 3 Win32+DOS). */
  ns: number;
  /** The name as UTF-16 code units. */
  units: Uint16Array;
  /** Keep the name (system files). */
  fixed: boolean;
}

function unitsOf(b: Uint8Array, off: number, n: number): Uint16Array {
  const u = new Uint16Array(n);
  for (let i = 0; i < n; i++) u[i] = b[off + 2 * i]! | (b[off + 2 * i + 1]! << 8);
  return u;
}

function str(u: Uint16Array): string {
  return String.fromCharCode(...u);
}

function nameKey(parent: number, file: number, units: Uint16Array): string {
  return `${parent}/${file}/${str(units)}`;
}

function scrambledUnits(u: Uint16Array): boolean {
  for (let i = 0; i < u.length; i++) if (u[i]! < 0x41 || u[i]! > 0x5a) return false;
  return u.length > 0;
}

/** The walk; `writer` null means audit only. */
export class NtfsPrivacyWalk {
  readonly #vol: NtfsVolume;
  readonly #src: Source;
  readonly #out: PrivacyWriter | null;
  readonly #find: FindingCollector;
  readonly #wipeData: boolean;
  readonly #freeSpace: boolean;
  readonly #rs: number;
  readonly #cs: number;
  #upcase: Uint16Array | null = null;
  readonly #fixedRecords = new Set<number>();
  readonly #rename = new Map<string, Uint16Array>();
  /** Directory record → $I30 allocation runs, index $BITMAP. */
  readonly #indexes = new Map<number, { runs: NtfsRun[]; bitmap: Uint8Array | null }>();
  /** Non-resident $DATA runs of user files. */
  readonly #userData: { ino: number; name: string; runs: NtfsRun[] }[] = [];
  #logRuns: NtfsRun[] = [];
  #logSize = 0;
  /** Counters of the repairs made. */
  readonly counts: NtfsScrubCounts = {
    recordsWritten: 0,
    indexBlocksWritten: 0,
    orderViolations: 0,
    unreadableRecords: 0,
  };

  /** Prepares a walk of `vol`; `writer` null audits only, otherwise the walk also scrubs. */
  constructor(
    vol: NtfsVolume,
    writer: PrivacyWriter | null,
    findings: FindingCollector,
    options: NtfsPrivacyWalkOptions = {},
  ) {
    this.#vol = vol;
    this.#src = vol.source;
    this.#out = writer;
    this.#find = findings;
    this.#wipeData = options.wipeData ?? true;
    this.#freeSpace = options.freeSpace ?? false;
    this.#rs = vol.mftRecordSize;
    this.#cs = vol.clusterSize;
  }

  get #scrub(): boolean {
    return this.#out !== null;
  }

  /** Runs every pass. */
  run(): void {
    const serial = this.#vol.boot.serialNumber.toString(16).padStart(16, "0");
    this.#find.add("uuid", 1, `volume serial ${serial}`, "info");
    this.#collect();
    this.#planNames();
    this.#records();
    this.#indexBlocks();
    this.#logFile();
    this.#data();
    if (this.#freeSpace) this.#free();
  }

  /** Clusters $Bitmap marks free: counted and, in scrub mode, zeroed where not zero. */
  #free(): void {
    const vol = this.#vol, cs = this.#cs;
    const chunk = new Uint8Array(Math.min(65536, Math.ceil(vol.nrClusters / 8)));
    const perRun = Math.max(1, Math.floor(MAX_RUN_BYTES / cs));
    const buf = new Uint8Array(perRun * cs);
    let found = 0;
    let sample = "";
    const visit = (first: number, count: number) => {
      for (let c = 0; c < count; c += perRun) {
        const n = Math.min(perRun, count - c);
        const off = (first + c) * cs;
        const b = buf.subarray(0, n * cs);
        const got = this.#src.readAt(off, b);
        b.fill(0, got);
        if (isZero(b)) continue;
        for (let k = 0; k < n; k++) if (!isZero(b.subarray(k * cs, (k + 1) * cs))) found++;
        if (!sample) sample = sampleBytes(b);
        if (this.#scrub) this.#out!.writeAt(off, new Uint8Array(got));
      }
    };
    let runStart = -1;
    for (let byte = 0; byte * 8 < vol.nrClusters; byte += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, Math.ceil(vol.nrClusters / 8) - byte));
      try {
        if (!vol.readRuns(vol.bitmapRuns, byte, part)) return;
      } catch {
        return;
      }
      for (let i = 0; i < part.length * 8; i++) {
        const c = byte * 8 + i;
        if (c >= vol.nrClusters) break;
        const used = (part[i >> 3]! >> (i & 7)) & 1;
        if (!used && runStart < 0) runStart = c;
        if (used && runStart >= 0) {
          visit(runStart, c - runStart);
          runStart = -1;
        }
      }
    }
    if (runStart >= 0) visit(runStart, vol.nrClusters - runStart);
    if (found) this.#find.add("free-space", found, sample || undefined);
  }

  // ---- pass 1: names ----------------------------------------------------------------------

  #collect(): void {
    const names: NameRef[] = [];
    for (let r = 0; r < FIRST_USER_RECORD; r++) this.#fixedRecords.add(r);
    for (const { n, header, attrs, rec } of this.#mft(true)) {
      if (!header.inUse || !attrs) continue;
      const file = header.isExtent ? header.baseRecord : n; // extension records belong to their base
      for (const attr of attrs) {
        if (attr.type === AttrType.FILE_NAME && !attr.nonResident && attr.valueLength >= 66) {
          const v = residentValue(rec, attr);
          const len = v[64]!;
          if (66 + 2 * len > v.length) continue;
          names.push({
            file,
            parent: u32(v, 0) + u16(v, 4) * 0x100000000,
            ns: v[65]!,
            units: unitsOf(v, 66, len),
            fixed: false,
          });
        } else if (attr.type === AttrType.INDEX_ALLOCATION && attr.name === "$I30") {
          const e = this.#indexes.get(file) ?? { runs: [], bitmap: null };
          e.runs.push(...attr.runs);
          this.#indexes.set(file, e);
        } else if (
          attr.type === AttrType.BITMAP && attr.name === "$I30" && !attr.nonResident
        ) {
          const e = this.#indexes.get(file) ?? { runs: [], bitmap: null };
          e.bitmap = residentValue(rec, attr).slice();
          this.#indexes.set(file, e);
        } else if (attr.type === AttrType.DATA && attr.nonResident) {
          if (file === SystemFile.UPCASE && attr.name === "") this.#loadUpcase(attr);
          if (file === SystemFile.LOG_FILE && attr.name === "") {
            this.#logRuns.push(...attr.runs);
            this.#logSize = Math.max(this.#logSize, attr.dataSize);
          }
          if (file >= FIRST_USER_RECORD) {
            this.#userData.push({ ino: file, name: attr.name, runs: attr.runs });
          }
        }
      }
    }
    // System names: records 0–15 and "$…" names below a system directory ($Extend/$Quota…).
    for (let changed = true, guard = 0; changed && guard < 8; guard++) {
      changed = false;
      for (const n of names) {
        if (n.fixed) continue;
        if (
          this.#fixedRecords.has(n.file) ||
          (n.units[0] === 0x24 && this.#fixedRecords.has(n.parent))
        ) {
          n.fixed = true;
          if (!this.#fixedRecords.has(n.file)) {
            this.#fixedRecords.add(n.file);
            changed = true;
          }
        }
      }
    }
    this.#names = names;
  }

  #names: NameRef[] = [];

  #loadUpcase(attr: NtfsAttribute): void {
    if (attr.dataSize < 2 || attr.dataSize > 0x20000 || attr.lowestVcn !== 0) return;
    const b = new Uint8Array(attr.dataSize);
    try {
      if (!this.#vol.readRuns(attr.runs, 0, b)) return;
    } catch {
      return;
    }
    this.#upcase = unitsOf(b, 0, b.length >> 1);
  }

  #up(c: number): number {
    const t = this.#upcase;
    if (t && c < t.length) return t[c]!;
    return c >= 0x61 && c <= 0x7a ? c - 32 : c;
  }

  /** NTFS $FILE_NAME collation: upcased, shorter first, then case-sensitive. */
  #collate(a: Uint16Array, b: Uint16Array): number {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = this.#up(a[i]!), y = this.#up(b[i]!);
      if (x !== y) return x < y ? -1 : 1;
    }
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return 0;
  }

  /** The smallest name of `len` letters A–Z that collates after `prev` (null: none exists). */
  #nextName(prev: Uint16Array | null, len: number): Uint16Array | null {
    const out = new Uint16Array(len).fill(0x41);
    if (!prev) return out;
    const p = prev.map((c) => this.#up(c));
    let m = 0; // leading letters of p usable as an exact prefix
    while (m < Math.min(p.length, len) && p[m]! >= 0x41 && p[m]! <= 0x5a) m++;
    for (let j = Math.min(m, len - 1); j >= 0; j--) {
      let c: number;
      if (j === p.length) c = 0x41; // p is a proper prefix: anything longer is greater
      else if (p[j]! < 0x41) c = 0x41;
      else if (p[j]! < 0x5a) c = p[j]! + 1;
      else continue;
      if (j === p.length && len <= p.length) continue;
      out.set(p.subarray(0, j));
      out[j] = c;
      out.fill(0x41, j + 1);
      return out;
    }
    return null;
  }

  #planNames(): void {
    const byParent = new Map<number, NameRef[]>();
    for (const n of this.#names) {
      let l = byParent.get(n.parent);
      if (!l) byParent.set(n.parent, l = []);
      l.push(n);
    }
    for (const list of byParent.values()) {
      list.sort((a, b) => this.#collate(a.units, b.units));
      let prev: Uint16Array | null = null;
      for (let i = 0; i < list.length; i++) {
        const n = list[i]!;
        if (n.fixed) {
          if (!(n.units.length === 1 && n.units[0] === 0x2e)) prev = n.units;
          continue;
        }
        if (!scrambledUnits(n.units)) {
          this.#find.add("names", 1, str(n.units));
        }
        let next = this.#nextName(prev, n.units.length);
        if (!next) {
          this.counts.orderViolations++;
          next = new Uint16Array(n.units.length).fill(0x5a);
        }
        const after = list.slice(i + 1).find((x) => x.fixed);
        if (after && this.#collate(next, after.units) >= 0) this.counts.orderViolations++;
        this.#rename.set(nameKey(n.parent, n.file, n.units), next);
        prev = next;
      }
    }
  }

  #newName(parent: number, file: number, units: Uint16Array): Uint16Array | undefined {
    const r = this.#rename.get(nameKey(parent, file, units));
    if (!r || r.length !== units.length) return undefined;
    for (let i = 0; i < r.length; i++) if (r[i] !== units[i]) return r;
    return undefined; // already the scrambled name
  }

  /** Renames the FILE_NAME key at `off` in `b` (parent ref at +0, name at +66). */
  #renameKey(b: Uint8Array, off: number, file: number): boolean {
    if (off + 66 > b.length) return false;
    const len = b[off + 64]!;
    if (off + 66 + 2 * len > b.length) return false;
    const parent = u32(b, off) + u16(b, off + 4) * 0x100000000;
    const units = unitsOf(b, off + 66, len);
    if (!this.#rename.has(nameKey(parent, file, units))) {
      // A key whose file record could not be read: its name has no planned replacement.
      const fixed = this.#fixedRecords.has(file) ||
        (units[0] === 0x24 && this.#fixedRecords.has(parent));
      if (!fixed && !scrambledUnits(units)) this.#find.add("names", 1, str(units));
      return false;
    }
    const n = this.#newName(parent, file, units);
    if (!n || !this.#scrub) return false;
    for (let i = 0; i < n.length; i++) put16(b, off + 66 + 2 * i, n[i]!);
    return true;
  }

  // ---- pass 2: MFT records ----------------------------------------------------------------

  /** Byte pieces of MFT record `n` on the volume. */
  #recordPieces(n: number): { offset: number; length: number }[] {
    return this.#pieces(this.#vol.mftRuns, n * this.#rs, this.#rs);
  }

  #pieces(
    runs: readonly NtfsRun[],
    pos: number,
    len: number,
  ): { offset: number; length: number }[] {
    const out: { offset: number; length: number }[] = [];
    const cs = this.#cs;
    let done = 0;
    while (done < len) {
      const p = pos + done;
      const vcn = Math.floor(p / cs);
      const r = runs.find((x) => vcn >= x.vcn && vcn < x.vcn + x.length);
      if (!r || r.lcn === LCN_HOLE) return [];
      const runEnd = (r.vcn + r.length) * cs;
      const n = Math.min(len - done, runEnd - p);
      out.push({ offset: (r.lcn + vcn - r.vcn) * cs + (p % cs), length: n });
      done += n;
    }
    return out;
  }

  #writeRecord(n: number, rec: Uint8Array): void {
    const out = rec.slice();
    if (!protectFixups(out)) return;
    let at = 0;
    for (const piece of this.#recordPieces(n)) {
      this.#out!.writeAt(piece.offset, out.subarray(at, at + piece.length));
      at += piece.length;
    }
    if (n < this.#vol.mftMirrorRecords) {
      this.#out!.writeAt(this.#vol.boot.mftMirrLcn * this.#cs + n * this.#rs, out);
    }
    this.counts.recordsWritten++;
  }

  /**
   * Every MFT record, read in batches of up to 1 MiB, fixups undone: its number, header and
   * attributes (null when they do not parse: such a record is left as it is). `rec` is a view
   * into the batch, valid until the next record is requested.
   */
  *#mft(countErrors = false): Generator<
    { n: number; rec: Uint8Array; header: MftRecordHeader; attrs: NtfsAttribute[] | null }
  > {
    const rs = this.#rs, count = this.#vol.recordCount;
    const perBatch = Math.max(1, Math.floor(MAX_RUN_BYTES / rs));
    const batch = new Uint8Array(perBatch * rs);
    for (let first = 0; first < count; first += perBatch) {
      const k = Math.min(perBatch, count - first);
      const buf = batch.subarray(0, k * rs);
      let ok: boolean;
      try {
        ok = this.#vol.readRuns(this.#vol.mftRuns, first * rs, buf);
      } catch (e) {
        if (!(e instanceof ReadError)) throw e;
        ok = false;
      }
      if (!ok) continue;
      for (let i = 0; i < k; i++) {
        const n = first + i;
        const rec = buf.subarray(i * rs, (i + 1) * rs);
        if (u32(rec, 0) !== 0x454c4946 || undoFixups(rec) !== "ok") continue; // "FILE"
        let header: MftRecordHeader | undefined;
        let attrs: NtfsAttribute[] | null = null;
        try {
          header = parseMftRecordHeader(rec);
          if (header?.inUse) attrs = parseAttributes(rec, header);
        } catch (e) {
          if (!(e instanceof CorruptImageError)) throw e;
          if (countErrors) this.counts.unreadableRecords++;
        }
        if (header) yield { n, rec, header, attrs };
      }
    }
  }

  #records(): void {
    for (const { n, rec, header, attrs } of this.#mft()) {
      if (!header.inUse) {
        if (this.#deletedRecord(n, rec)) this.#writeRecord(n, rec);
        continue;
      }
      if (!attrs) continue;
      const file = header.isExtent ? header.baseRecord : n;
      const user = !this.#fixedRecords.has(file);
      let dirty = false;
      const streams: NtfsAttribute[] = [];
      for (const attr of attrs) {
        if (this.#attribute(file, user, rec, attr)) dirty = true;
        if (user && attr.type === AttrType.DATA && attr.name !== "") streams.push(attr);
      }
      if (streams.length && this.#streamNames(rec, streams)) dirty = true;
      if (n > 11 && this.#recordSlack(n, rec)) dirty = true;
      if (dirty && this.#scrub) this.#writeRecord(n, rec);
    }
  }

  #deletedRecord(n: number, rec: Uint8Array): boolean {
    if (n < FIRST_USER_RECORD) return false;
    const used = Math.min(u32(rec, 0x18), rec.length);
    const attrs = u16(rec, 0x14);
    const body = rec.subarray(Math.min(attrs, used), used);
    // Records without names or contents (mkntfs's reserved 16–23: $SI and an empty $DATA)
    // identify nothing.
    const empty = !holdsContent(body);
    const slack = rec.subarray(Math.max(used, 0x30));
    if (empty && isZero(slack)) return false;
    if (!empty) this.#find.add("deleted-inodes", 1, sampleUtf16(body) || `MFT record ${n}`);
    else this.#find.add("record-slack", 1, `MFT record ${n}`);
    if (!this.#scrub) return false;
    rec.fill(0, 0x30); // like ntfsclone -m: header kept, USA and attributes zeroed
    return true;
  }

  #recordSlack(n: number, rec: Uint8Array): boolean {
    const used = u32(rec, 0x18);
    if (used < 0x30 || used >= rec.length) return false;
    const slack = rec.subarray(used);
    if (isZero(slack)) return false;
    this.#find.add("record-slack", slack.length, sampleUtf16(slack) || `MFT record ${n}`);
    if (!this.#scrub) return false;
    slack.fill(0);
    return true;
  }

  /** Scans (and scrubs) one attribute record; true when `rec` changed. */
  #attribute(n: number, user: boolean, rec: Uint8Array, a: NtfsAttribute): boolean {
    switch (a.type) {
      case AttrType.FILE_NAME:
        return !a.nonResident && this.#renameKey(rec, a.valueOffset, n);
      case AttrType.VOLUME_NAME: {
        if (a.nonResident || a.valueLength === 0) return false;
        const v = residentValue(rec, a);
        this.#find.add("label", 1, str(unitsOf(v, 0, v.length >> 1)));
        if (!this.#scrub) return false;
        v.fill(0);
        put32(rec, a.offset + 16, 0); // value_length
        return true;
      }
      case AttrType.INDEX_ROOT:
        return !a.nonResident && this.#indexRoot(n, rec, a);
      case AttrType.DATA:
        if (!user || a.nonResident) return false;
        return this.#residentData(n, rec, a);
      case AttrType.REPARSE_POINT:
        if (!user || a.nonResident) return false;
        return this.#reparse(n, rec, a);
      default:
        return false;
    }
  }

  #residentData(n: number, rec: Uint8Array, a: NtfsAttribute): boolean {
    const v = residentValue(rec, a);
    if (v.length === 0) return false;
    if (a.name === "" && v.length >= 8 && INTERIX_MAGIC.every((c, i) => v[i] === c)) {
      const t = v.subarray(8);
      if (isXUtf16(t)) return false;
      this.#find.add("symlink-targets", 1, `MFT record ${n}: ${str(unitsOf(t, 0, t.length >> 1))}`);
      if (!this.#scrub) return false;
      fillXUtf16(t);
      return true;
    }
    if (isZero(v)) return false;
    const kind = a.name === "" ? "inline-data" : "xattr-values";
    this.#find.add(kind, 1, `MFT record ${n}: ${sampleBytes(v)}`);
    if (!this.#scrub) return false;
    v.fill(0);
    return true;
  }

  #reparse(n: number, rec: Uint8Array, a: NtfsAttribute): boolean {
    const v = residentValue(rec, a);
    if (v.length < 8) return false;
    const tag = u32(v, 0);
    const dataLen = Math.min(u16(v, 4), v.length - 8);
    const data = v.subarray(8, 8 + dataLen);
    let names: Uint8Array | undefined;
    if (tag === 0xa000000c && data.length >= 12) names = data.subarray(12); // symlink
    else if (tag === 0xa0000003 && data.length >= 8) names = data.subarray(8); // junction
    else if (tag === 0xa000001d && data.length >= 4) names = data.subarray(4); // WSL symlink
    if (!names || names.length === 0) return false;
    const utf8 = tag === 0xa000001d;
    if (utf8 ? names.every((c) => c === 0x78) : isXUtf16Or0(names)) return false;
    this.#find.add(
      "symlink-targets",
      1,
      `MFT record ${n}: ${utf8 ? sampleBytes(names) : sampleUtf16(names)}`,
    );
    if (!this.#scrub) return false;
    if (utf8) names.fill(0x78);
    else {
      for (let i = 0; i + 1 < names.length; i += 2) {
        if (names[i] !== 0 || names[i + 1] !== 0) names[i] = 0x78, names[i + 1] = 0;
      }
    }
    return true;
  }

  /** Named $DATA streams (ntfs-3g's user xattrs): names scrambled in collation order. */
  #streamNames(rec: Uint8Array, streams: NtfsAttribute[]): boolean {
    const items = streams.map((a) => {
      const len = rec[a.offset + 9]!, off = a.offset + u16(rec, a.offset + 10);
      return { at: off, units: unitsOf(rec, off, len) };
    });
    const seen = new Set<string>();
    const uniq = items.filter((i) => {
      const k = str(i.units);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    }).sort((a, b) => this.#collate(a.units, b.units));
    let prev: Uint16Array | null = null;
    const map = new Map<string, Uint16Array>();
    for (const i of uniq) {
      if (!scrambledUnits(i.units)) this.#find.add("xattr-names", 1, str(i.units));
      const next: Uint16Array = this.#nextName(prev, i.units.length) ??
        new Uint16Array(i.units.length).fill(0x5a);
      map.set(str(i.units), next);
      prev = next;
    }
    if (!this.#scrub) return false;
    let changed = false;
    for (const i of items) {
      const next = map.get(str(i.units))!;
      if (str(next) === str(i.units)) continue;
      for (let k = 0; k < next.length; k++) put16(rec, i.at + 2 * k, next[k]!);
      changed = true;
    }
    return changed;
  }

  /** Entries of an INDEX_HEADER at `h` in `b`, up to `end`; renames keys of $I30 indexes. */
  #indexEntries(b: Uint8Array, h: number, limit: number): boolean {
    const first = h + u32(b, h);
    const end = Math.min(h + u32(b, h + 4), limit);
    let p = first;
    let changed = false;
    for (let guard = 0; p + 16 <= end && guard < 65536; guard++) {
      const len = u16(b, p + 8), keyLen = u16(b, p + 10), flags = u16(b, p + 12);
      if (len < 16 || p + len > end) break;
      if (flags & 2) break; // INDEX_ENTRY_END
      if (keyLen >= 66 && p + 16 + keyLen <= end) {
        const file = u32(b, p) + u16(b, p + 4) * 0x100000000;
        if (this.#renameKey(b, p + 16, file)) changed = true;
      }
      p += len;
    }
    return changed;
  }

  #indexRoot(_n: number, rec: Uint8Array, a: NtfsAttribute): boolean {
    if (a.name !== "$I30" || a.valueLength < 32) return false;
    const v = a.valueOffset;
    if (u32(rec, v) !== AttrType.FILE_NAME) return false;
    return this.#indexEntries(rec, v + 16, v + a.valueLength);
  }

  // ---- pass 3: index blocks ---------------------------------------------------------------

  #indexBlocks(): void {
    const size = this.#vol.boot.indexRecordSize;
    for (const [dir, { runs, bitmap }] of this.#indexes) {
      runs.sort((a, b) => a.vcn - b.vcn);
      const last = runs[runs.length - 1];
      if (!last) continue;
      const total = (last.vcn + last.length) * this.#cs;
      const count = Math.floor(total / size);
      for (let i = 0; i < count; i++) {
        const pieces = this.#pieces(runs, i * size, size);
        if (pieces.length === 0) continue;
        const b = new Uint8Array(size);
        let at = 0;
        for (const p of pieces) {
          this.#src.readAt(p.offset, b.subarray(at, at + p.length));
          at += p.length;
        }
        if (u32(b, 0) !== 0x58444e49 || undoFixups(b) !== "ok") continue; // "INDX"
        const inUse = bitmap ? ((bitmap[i >> 3] ?? 0) >> (i & 7)) & 1 : 1;
        let changed = false;
        const h = 0x18;
        const used = Math.min(h + u32(b, h + 4), size);
        if (inUse) {
          if (this.#indexEntries(b, h, size)) changed = true;
          const slack = b.subarray(Math.max(used, h + 16));
          if (!isZero(slack)) {
            const s = sampleUtf16(slack);
            if (s) this.#find.add("deleted-names", 1, s);
            this.#find.add("dir-slack", slack.length, `directory record ${dir}`);
            if (this.#scrub) slack.fill(0), changed = true;
          }
        } else {
          const body = b.subarray(h + 16);
          if (!isZero(body)) {
            const s = sampleUtf16(body);
            if (s) this.#find.add("deleted-names", 1, s);
            this.#find.add("dir-slack", body.length, `directory record ${dir}`);
            if (this.#scrub) {
              body.fill(0);
              put32(b, h, 16), put32(b, h + 4, 16 + 16); // one END entry
              put16(b, h + 16 + 8, 16), put16(b, h + 16 + 12, 2);
              changed = true;
            }
          }
        }
        if (!changed || !this.#scrub) continue;
        if (!protectFixups(b)) continue;
        at = 0;
        for (const p of pieces) {
          this.#out!.writeAt(p.offset, b.subarray(at, at + p.length));
          at += p.length;
        }
        this.counts.indexBlocksWritten++;
      }
    }
  }

  // ---- pass 4: $LogFile and user data -----------------------------------------------------

  #logFile(): void {
    const runs = this.#logRuns.sort((a, b) => a.vcn - b.vcn);
    const pages = Math.floor(this.#logSize / LOG_PAGE);
    let found = 0;
    let sample = "";
    const ff = new Uint8Array(LOG_PAGE).fill(0xff);
    for (let i = 0; i < pages; i++) {
      const pieces = this.#pieces(runs, i * LOG_PAGE, LOG_PAGE);
      if (pieces.length === 0) continue;
      const b = new Uint8Array(LOG_PAGE);
      let at = 0;
      for (const p of pieces) {
        this.#src.readAt(p.offset, b.subarray(at, at + p.length));
        at += p.length;
      }
      const magic = u32(b, 0);
      if (magic === 0x52545352 || magic === 0x444b4843) continue; // "RSTR", "CHKD": no user data
      if (isZero(b) || b.every((c) => c === 0xff)) continue;
      found++;
      if (!sample) sample = sampleUtf16(b) || sampleBytes(b);
      if (!this.#scrub) continue;
      at = 0;
      for (const p of pieces) {
        this.#out!.writeAt(p.offset, ff.subarray(at, at + p.length));
        at += p.length;
      }
    }
    if (found) this.#find.add("journal", found, sample ? `$LogFile page: ${sample}` : undefined);
  }

  #data(): void {
    const cs = this.#cs;
    const perRun = Math.max(1, Math.floor(MAX_RUN_BYTES / cs));
    const buf = new Uint8Array(perRun * cs);
    let found = 0;
    let sample = "";
    for (const { ino, name, runs } of this.#userData) {
      // System files keep their data, except the change journal ($UsnJrnl:$J names files).
      if (this.#fixedRecords.has(ino) && name !== "$J") continue;
      for (const r of runs) {
        if (r.lcn === LCN_HOLE) continue;
        for (let c = 0; c < r.length; c += perRun) {
          const n = Math.min(perRun, r.length - c);
          const b = buf.subarray(0, n * cs);
          const off = (r.lcn + c) * cs;
          if (off >= this.#src.size) break;
          const got = this.#src.readAt(off, b);
          b.fill(0, got);
          if (isZero(b)) continue;
          for (let k = 0; k < n; k++) if (!isZero(b.subarray(k * cs, (k + 1) * cs))) found++;
          if (!sample) sample = sampleBytes(b);
          if (this.#scrub && this.#wipeData) {
            b.fill(0);
            this.#out!.writeAt(off, b.subarray(0, got));
          }
        }
      }
    }
    if (found) this.#find.add("file-data", found, sample || undefined);
  }
}

// ---- helpers --------------------------------------------------------------------------------

function isXUtf16(b: Uint8Array): boolean {
  for (let i = 0; i + 1 < b.length; i += 2) if (b[i] !== 0x78 || b[i + 1] !== 0) return false;
  return true;
}

function isXUtf16Or0(b: Uint8Array): boolean {
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = b[i]! | (b[i + 1]! << 8);
    if (c !== 0x78 && c !== 0) return false;
  }
  return true;
}

function fillXUtf16(b: Uint8Array): void {
  for (let i = 0; i + 1 < b.length; i += 2) b[i] = 0x78, b[i + 1] = 0;
}

/** The longest printable UTF-16LE run (≥ 4 characters) of `b`. */
function sampleUtf16(b: Uint8Array): string {
  return printableRun(b, 2);
}

/** The longest printable ASCII run (≥ 4 characters) of `b`, or its length. */
function sampleBytes(b: Uint8Array): string {
  return printableRun(b) || `${b.length} bytes`;
}

/**
 * True when the attribute records in `body` (a deleted record's bytes from attrs_offset to
 * bytes_in_use) hold a name or any content beyond $STANDARD_INFORMATION and empty values.
 */
function holdsContent(body: Uint8Array): boolean {
  let p = 0;
  for (let guard = 0; p + 24 <= body.length && guard < 256; guard++) {
    const type = u32(body, p), len = u32(body, p + 4);
    if (type === AttrType.END) return false;
    if (len < 24 || len % 8 || p + len > body.length) return !isZero(body.subarray(p));
    if (type === AttrType.FILE_NAME) return true;
    if (type !== AttrType.STANDARD_INFORMATION) {
      if (body[p + 8] !== 0) return true; // non-resident: clusters of a deleted file
      const vlen = u32(body, p + 16), voff = u16(body, p + 20);
      if (vlen > 0 && !isZero(body.subarray(p + voff, Math.min(p + voff + vlen, p + len)))) {
        return true;
      }
    }
    p += len;
  }
  return false;
}
