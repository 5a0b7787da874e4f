/**
 * NTFS test volumes: `ntfsFixture(name)` returns the path of a fresh-per-process copy.
 * Committed volumes (tests/fixtures/ntfs/*.img.gz, built by scripts/fixtures/ntfs.sh and
 * checked against SHA256SUMS) are extracted; the others are built with mkntfs (and, for
 * populated ones, ntfs-3g as root) by the same script. Paths are cached per process.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { extractFixture, haveTool, isRoot, mustRun, ROOT, sha256File } from "../_helpers.ts";
import { openSource } from "../../lib/io/mod.ts";
import {
  AttrType,
  encodeRunlist,
  NtfsVolume,
  parseAttributes,
  parseMftRecordHeader,
  protectFixups,
  undoFixups,
} from "../../lib/ntfs/mod.ts";

/** Committed volumes, gzip-compressed. */
export const COMMITTED = ["c4k", "c512", "odd4k", "mftlist"] as const;
/** Volumes the script builds at test time (mkntfs; c64k also needs root for ntfs-3g). */
export const BUILT = ["empty4k", "c64k"] as const;
/** Every fixture name. */
export type NtfsFixtureName = typeof COMMITTED[number] | typeof BUILT[number];

let dir: string | undefined;
const cache = new Map<string, string>();

function workDir(): string {
  if (!dir) {
    dir = Deno.makeTempDirSync({ prefix: "fsimage-ntfs-fx-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir!, { recursive: true });
      } catch {
        // gone
      }
    });
  }
  return dir;
}

function expectedSums(): Map<string, string> {
  const m = new Map<string, string>();
  const text = Deno.readTextFileSync(`${ROOT}/tests/fixtures/ntfs/SHA256SUMS`);
  for (const line of text.split("\n")) {
    const [sum, name] = line.trim().split(/\s+/);
    if (sum && name) m.set(name, sum);
  }
  return m;
}

/** True when `name` can be had here (committed, or buildable with the tools present). */
export function haveNtfsFixture(name: NtfsFixtureName): boolean {
  if ((COMMITTED as readonly string[]).includes(name)) return true;
  if (!haveTool("mkntfs")) return false;
  return name === "empty4k" || (isRoot() && haveTool("ntfs-3g"));
}

/**
 * The path of a private copy of fixture `name` (tests may modify it: call with
 * `fresh: true` to get a new copy instead of the cached one).
 */
export function ntfsFixture(name: NtfsFixtureName, options: { fresh?: boolean } = {}): string {
  const cached = cache.get(name);
  if (cached && !options.fresh) return cached;
  const d = workDir();
  const path = options.fresh ? `${d}/${name}-${crypto.randomUUID()}.img` : `${d}/${name}.img`;
  if ((COMMITTED as readonly string[]).includes(name)) {
    extractFixture(`ntfs/${name}.img.gz`, path);
    const want = expectedSums().get(`${name}.img`);
    const got = sha256File(path);
    if (want !== got) {
      throw new Error(`fixture ${name}.img: sha256 ${got}, SHA256SUMS says ${want}`);
    }
  } else {
    const base = `${d}/${name}.img`;
    if (!existsSync(base)) {
      mustRun("bash", [`${ROOT}/scripts/fixtures/ntfs.sh`, d, name]);
    }
    if (path !== base) Deno.copyFileSync(base, path);
  }
  if (!options.fresh) cache.set(name, path);
  return path;
}

/** Toggles the $Bitmap bit of `cluster` in the volume file at `path` (an inconsistency). */
export function toggleBitmapBit(path: string, cluster: number): void {
  using src = openSource(path);
  const v = NtfsVolume.open(src);
  const byte = Math.floor(cluster / 8);
  const vcn = Math.floor(byte / v.clusterSize);
  const r = v.bitmapRuns.find((r) => vcn >= r.vcn && vcn < r.vcn + r.length);
  if (!r) throw new Error(`cluster ${cluster} is outside $Bitmap`);
  const at = (r.lcn + vcn - r.vcn) * v.clusterSize + (byte % v.clusterSize);
  const b = new Uint8Array(1);
  src.readAt(at, b);
  b[0] = b[0]! ^ (1 << (cluster % 8));
  using f = Deno.openSync(path, { read: true, write: true });
  f.seekSync(at, Deno.SeekMode.Start);
  f.writeSync(b);
}

/**
 * Sets VOLUME_IS_DIRTY in $Volume's $VOLUME_INFORMATION, in $MFT and $MFTMirr alike, keeping
 * the update sequence number (as Windows leaves a volume it did not shut down cleanly).
 */
export function setDirty(path: string): void {
  using src = openSource(path);
  const v = NtfsVolume.open(src);
  using f = Deno.openSync(path, { read: true, write: true });
  for (const lcn of [v.boot.mftLcn, v.boot.mftMirrLcn]) {
    const at = lcn * v.clusterSize + 3 * v.mftRecordSize;
    const b = new Uint8Array(v.mftRecordSize);
    src.readAt(at, b);
    undoFixups(b);
    const h = parseMftRecordHeader(b)!;
    const vi = parseAttributes(b, h).find((a) => a.type === AttrType.VOLUME_INFORMATION)!;
    b[vi.valueOffset + 10] = b[vi.valueOffset + 10]! | 1;
    const ofs = b[4]! | (b[5]! << 8);
    const usn = (b[ofs]! | (b[ofs + 1]! << 8)) - 1;
    b[ofs] = usn & 0xff;
    b[ofs + 1] = usn >> 8;
    protectFixups(b);
    f.seekSync(at, Deno.SeekMode.Start);
    f.writeSync(b);
  }
}

/**
 * Builds an empty volume with mkntfs -T (deterministic) into `dir`: a `size`-byte device,
 * `clusterSize`-byte clusters, `sectorSize`-byte sectors, and optionally fewer sectors than
 * the device holds. Returns its path.
 */
export function buildEmptyVolume(
  dir: string,
  spec: { size: number; clusterSize: number; sectorSize?: number; sectors?: number },
): string {
  const path = `${dir}/empty-${spec.size}-${spec.clusterSize}-${spec.sectorSize ?? 512}-${
    spec.sectors ?? 0
  }.img`;
  using f = Deno.openSync(path, { write: true, create: true, truncate: true });
  f.truncateSync(spec.size);
  const args = ["-q", "-F", "-f", "-T", "-c", String(spec.clusterSize)];
  args.push("-s", String(spec.sectorSize ?? 512), path);
  if (spec.sectors) args.push(String(spec.sectors));
  mustRun("mkntfs", args);
  return path;
}

/**
 * Overwrites one byte of attribute record `index` of MFT record `inode` (fixups kept intact:
 * the byte must not be a sector's last word). Returns the byte's absolute offset.
 */
export function patchAttributeByte(
  path: string,
  inode: number,
  index: number,
  field: number,
  value: number,
): number {
  using src = openSource(path);
  const v = NtfsVolume.open(src);
  const rs = v.mftRecordSize;
  const run = v.mftRuns.find((r) => inode * rs < (r.vcn + r.length) * v.clusterSize)!;
  const at = run.lcn * v.clusterSize + inode * rs - run.vcn * v.clusterSize;
  const raw = new Uint8Array(rs);
  src.readAt(at, raw);
  const rec = raw.slice();
  undoFixups(rec);
  const a = parseAttributes(rec, parseMftRecordHeader(rec)!)[index]!;
  const off = at + a.offset + field;
  using f = Deno.openSync(path, { read: true, write: true });
  f.seekSync(off, Deno.SeekMode.Start);
  f.writeSync(new Uint8Array([value]));
  return off;
}

/**
 * Marks `count` free clusters from `start` as bad: rewrites $BadClus:$Bad's runlist (hole,
 * run, hole) in record 8 and sets their $Bitmap bits, as chkdsk would.
 */
export function markBadClusters(
  path: string,
  start: number,
  count: number,
  options: { setBitmap?: boolean } = {},
): void {
  using src = openSource(path);
  const v = NtfsVolume.open(src);
  const rs = v.mftRecordSize;
  const run0 = v.mftRuns[0]!;
  const at = run0.lcn * v.clusterSize + 8 * rs;
  const rec = new Uint8Array(rs);
  src.readAt(at, rec);
  if (undoFixups(rec) !== "ok") throw new Error("record 8 is damaged");
  const h = parseMftRecordHeader(rec)!;
  const attrs = parseAttributes(rec, h);
  const bad = attrs.find((a) => a.type === AttrType.DATA && a.name === "$Bad")!;
  if (bad !== attrs[attrs.length - 1]) throw new Error("$Bad is not the last attribute");
  const total = bad.runs.reduce((s, r) => s + r.length, 0);
  const mp = encodeRunlist([
    { vcn: 0, lcn: -1, length: start },
    { vcn: start, lcn: start, length: count },
    { vcn: start + count, lcn: -1, length: total - start - count },
  ]);
  const dv = new DataView(rec.buffer);
  const mpOff = dv.getUint16(bad.offset + 32, true);
  const len = (mpOff + mp.length + 7) & ~7;
  rec.fill(0, bad.offset + mpOff, bad.offset + len + 8);
  rec.set(mp, bad.offset + mpOff);
  dv.setUint32(bad.offset + 4, len, true);
  dv.setUint32(bad.offset + len, 0xffffffff, true);
  dv.setUint32(0x18, bad.offset + len + 8, true); // bytes_in_use
  const ofs = dv.getUint16(4, true);
  dv.setUint16(ofs, dv.getUint16(ofs, true) - 1, true); // keep the USN
  protectFixups(rec);
  using f = Deno.openSync(path, { read: true, write: true });
  f.seekSync(at, Deno.SeekMode.Start);
  f.writeSync(rec);
  f.close();
  if (options.setBitmap ?? true) {
    for (let c = start; c < start + count; c++) toggleBitmapBit(path, c);
  }
}
