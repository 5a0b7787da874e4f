/**
 * The NTFS walker: the used-cluster set equals $Bitmap (plus the backup boot cluster) on
 * real volumes, inuse equals ntfsclone's image header, attribute lists are followed, and
 * hostile volumes fail only with domain errors.
 */
import assert from "node:assert/strict";
import { FsimageError } from "../../lib/errors.ts";
import { MemorySource } from "../../lib/io/mod.ts";
import { AttrType, NtfsVolume } from "../../lib/ntfs/mod.ts";
import { needs, run, tempDir } from "../_helpers.ts";
import { COMMITTED, ntfsFixture } from "./_fixtures.ts";

/** The clusters whose $Bitmap bit is set, below nrClusters, as block extents. */
function bitmapExtents(vol: NtfsVolume): { start: number; count: number }[] {
  const bytes = new Uint8Array(vol.bitmapSize);
  vol.readRuns(vol.bitmapRuns, 0, bytes);
  const out: { start: number; count: number }[] = [];
  for (let c = 0; c < vol.nrClusters; c++) {
    if (!((bytes[c >> 3]! >> (c & 7)) & 1)) continue;
    const last = out[out.length - 1];
    if (last && last.start + last.count === c) last.count++;
    else out.push({ start: c, count: 1 });
  }
  return out;
}

for (const name of COMMITTED) {
  Deno.test(`NtfsVolume.scan() of ${name}: used = $Bitmap + backup cluster, no mismatch`, () => {
    const vol = NtfsVolume.open(new MemorySource(Deno.readFileSync(ntfsFixture(name))));
    const scan = vol.scan();
    assert.equal(scan.mismatchCount, 0);
    assert.equal(scan.duplicates.length, 0);
    const want = bitmapExtents(vol);
    const last = want[want.length - 1]!;
    if (last.start + last.count === vol.nrClusters) last.count++;
    else want.push({ start: vol.nrClusters, count: 1 });
    assert.deepEqual(scan.used, want);
    assert.equal(scan.inuse + 1, want.reduce((s, e) => s + e.count, 0));
  });
}

Deno.test({
  name: "NtfsVolume.scan() inuse equals the inuse of ntfsclone's image header",
  ...needs("ntfsclone"),
  fn() {
    using d = tempDir();
    for (const name of COMMITTED) {
      const path = ntfsFixture(name);
      assert.equal(run("ntfsclone", ["-q", "-s", "-O", `${d.path}/x`, path]).code, 0);
      const h = new DataView(Deno.readFileSync(`${d.path}/x`).buffer);
      const inuse = Number(h.getBigUint64(38, true));
      assert.equal(NtfsVolume.open(new MemorySource(Deno.readFileSync(path))).scan().inuse, inuse);
    }
  },
});

Deno.test("NtfsVolume.walk() follows an attribute list into extent records", () => {
  const vol = NtfsVolume.open(new MemorySource(Deno.readFileSync(ntfsFixture("c4k"))));
  let found = false;
  for (const ino of vol.walk()) {
    const list = ino.attributes.findIndex((w) => w.attr.type === AttrType.ATTRIBUTE_LIST);
    if (list < 0) continue;
    found = true;
    assert.ok(ino.extents.size > 0);
    assert.ok(ino.attributes.some((w) => w.record !== ino.inode));
    // The list itself sits before the first attribute of a type above 0x20.
    const after = ino.attributes.findIndex((w) => w.attr.type > AttrType.ATTRIBUTE_LIST);
    assert.equal(list, after - 1);
  }
  assert.ok(found, "the fixture has a file with an attribute list");
});

Deno.test("NtfsVolume reports the volume version, flags and geometry", () => {
  const vol = NtfsVolume.open(new MemorySource(Deno.readFileSync(ntfsFixture("c512"))));
  assert.equal(`${vol.majorVersion}.${vol.minorVersion}`, "3.1");
  assert.equal(vol.dirty, false);
  assert.equal(vol.clusterSize, 512);
  assert.equal(vol.mftMirrorRecords, 4);
  assert.ok(vol.recordCount >= 27);
});

Deno.test("hostile volumes: seeded byte flips in the metadata fail only with domain errors", () => {
  const base = Deno.readFileSync(ntfsFixture("c4k"));
  const vol = NtfsVolume.open(new MemorySource(base));
  // Mutate the boot sector, the first MFT records and $MFTMirr.
  const zones = [[0, 512], [vol.boot.mftLcn * 4096, 64 * 1024], [vol.boot.mftMirrLcn * 4096, 4096]];
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  let ok = 0, refused = 0;
  for (let t = 0; t < 300; t++) {
    const img = base.slice();
    for (let k = 0, n = 1 + rnd(8); k < n; k++) {
      const [from, len] = zones[rnd(zones.length)]!;
      img[from! + rnd(len!)] = rnd(256);
    }
    try {
      const v = NtfsVolume.open(new MemorySource(img));
      v.scan();
      ok++;
    } catch (e) {
      if (!(e instanceof FsimageError)) throw e;
      refused++;
    }
  }
  assert.ok(ok > 0 && refused > 0, `ok ${ok}, refused ${refused}`);
});

Deno.test("the c4k fixture covers compressed, sparse and named $DATA and the walk decodes them", () => {
  const vol = NtfsVolume.open(new MemorySource(Deno.readFileSync(ntfsFixture("c4k"))));
  const seen = { compressed: false, sparse: false, named: false, holes: false };
  for (const ino of vol.walk()) {
    for (const { attr: a } of ino.attributes) {
      if (a.type !== AttrType.DATA || !a.nonResident) continue;
      if (a.flags & 0x0001) seen.compressed = true;
      if (a.flags & 0x8000) seen.sparse = true;
      if (a.name && ino.inode > 11) seen.named = true;
      if (a.runs.some((r) => r.lcn === -1)) seen.holes = true;
    }
  }
  assert.deepEqual(seen, { compressed: true, sparse: true, named: true, holes: true });
});

Deno.test("NtfsVolume maps a fragmented $MFT through its attribute list (mftlist fixture)", () => {
  const vol = NtfsVolume.open(new MemorySource(Deno.readFileSync(ntfsFixture("mftlist"))));
  const first = vol.walk().next();
  assert.ok(!first.done);
  const mft = first.value;
  assert.equal(mft.inode, 0);
  assert.ok(mft.attributes.some((w) => w.attr.type === AttrType.ATTRIBUTE_LIST));
  assert.ok(mft.extents.size > 0, "record 0 has extent records");
  // The runlist covers the whole initialized $MFT, contiguous in VCNs.
  let vcn = 0;
  for (const r of vol.mftRuns) {
    assert.equal(r.vcn, vcn);
    vcn += r.length;
  }
  assert.ok(vcn * vol.clusterSize >= vol.mftInitializedSize);
  // Extents of $MFT (base reference 0 with a sequence number) are not walked as inodes.
  for (const ino of vol.walk()) assert.equal(ino.header.isExtent, false);
});
