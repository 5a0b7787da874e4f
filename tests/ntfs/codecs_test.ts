/**
 * The pure NTFS codecs: boot sector, update sequence fixups, runlists, MFT records and
 * attribute lists. Golden values come from a real mkntfs volume; mutations check the exact
 * error and byte offset.
 */
import assert from "node:assert/strict";
import { CorruptImageError } from "../../lib/errors.ts";
import {
  decodeRunlist,
  encodeRunlist,
  LCN_HOLE,
  type NtfsRun,
  parseAttributeList,
  parseAttributes,
  parseMftRecordHeader,
  parseNtfsBootSector,
  protectFixups,
  undoFixups,
} from "../../lib/ntfs/mod.ts";
import { ntfsFixture } from "./_fixtures.ts";

/** A minimal valid boot sector: 512 B sectors, 8 per cluster, 1 KiB records, 4 KiB indexes. */
function bootSector(): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  b.set([0xeb, 0x52, 0x90, ..."NTFS    "].map((c) => typeof c === "string" ? c.charCodeAt(0) : c));
  v.setUint16(0x0b, 512, true);
  b[0x0d] = 8;
  b[0x15] = 0xf8;
  v.setBigUint64(0x28, 32767n, true);
  v.setBigUint64(0x30, 4n, true);
  v.setBigUint64(0x38, 2047n, true);
  b[0x40] = 0xf6;
  b[0x44] = 1;
  v.setBigUint64(0x48, 0x1234n, true);
  v.setUint16(0x1fe, 0xaa55, true);
  return b;
}

Deno.test("parseNtfsBootSector() reads mkntfs's boot sector (golden)", () => {
  const b = Deno.readFileSync(ntfsFixture("c4k")).subarray(0, 512);
  const bs = parseNtfsBootSector(b);
  assert.deepEqual(
    { ...bs, serialNumber: undefined },
    {
      bytesPerSector: 512,
      sectorsPerCluster: 8,
      clusterSize: 4096,
      numberOfSectors: 32767,
      nrClusters: 4095,
      mftLcn: 4,
      mftMirrLcn: 2047,
      mftRecordSize: 1024,
      indexRecordSize: 4096,
      serialNumber: undefined,
    },
  );
});

Deno.test("parseNtfsBootSector() decodes 2 MiB clusters (0xF4) and record sizes in bytes", () => {
  const b = bootSector();
  b[0x0d] = 0xf4;
  new DataView(b.buffer).setBigUint64(0x38, 5n, true); // $MFTMirr inside the 7 clusters
  const bs = parseNtfsBootSector(b);
  assert.equal(bs.clusterSize, 2 << 20);
  assert.equal(bs.nrClusters, Math.floor(32767 / 4096));
  assert.equal(bs.mftRecordSize, 1024);
  assert.equal(bs.indexRecordSize, 2 << 20);
});

const bootMutations: [string, (b: Uint8Array) => void, number, string][] = [
  ["a wrong OEM id", (b) => (b[3] = 0x4d), 3, "NTFS signature is missing."],
  [
    "128 bytes per sector",
    (b) => (b[0x0b] = 128, b[0x0c] = 0),
    0x0b,
    "Unexpected bytes per sector value (128).",
  ],
  [
    "sectors per cluster 3",
    (b) => (b[0x0d] = 3),
    0x0d,
    "Unexpected sectors per cluster value (3).",
  ],
  [
    "sectors per cluster 0xF3 (4 MiB)",
    (b) => (b[0x0d] = 0xf3),
    0x0d,
    "Unexpected cluster size (4194304).",
  ],
  [
    "a non-zero FAT count",
    (b) => (b[0x10] = 2),
    0x0e,
    "Reserved fields aren't zero (0, 0, 0, 0, 0, 2).",
  ],
  [
    "clusters per MFT record 3",
    (b) => (b[0x40] = 3),
    0x40,
    "Unexpected clusters per mft record (3).",
  ],
  ["a zero $MFT LCN", (b) => b.fill(0, 0x30, 0x38), 0x30, "Invalid location of MFT or MFTMirr."],
  [
    "$MFT == $MFTMirr",
    (b) => b.copyWithin(0x30, 0x38, 0x40),
    0x30,
    "Invalid location of MFT or MFTMirr.",
  ],
  ["zero sectors", (b) => b.fill(0, 0x28, 0x30), 0x28, "Volume size is set to zero."],
  [
    "$MFTMirr past the end",
    (b) => (b[0x39] = 0x7f),
    0x30,
    "$MFT LCN (4) or $MFTMirr LCN (32767) is greater than the number of clusters (4095).",
  ],
];
for (const [what, mutate, offset, compat] of bootMutations) {
  Deno.test(`parseNtfsBootSector() rejects ${what}`, () => {
    const b = bootSector();
    mutate(b);
    assert.throws(() => parseNtfsBootSector(b), (e: unknown) => {
      assert.ok(e instanceof CorruptImageError, String(e));
      assert.equal(e.details.offset, offset);
      assert.equal(e.details.compat, compat);
      assert.match(e.message, new RegExp(`byte 0x${offset.toString(16)}\\)$`));
      return true;
    });
  });
}

Deno.test("parseNtfsBootSector() asks to seek the last sector, as libntfs, and fails with its hints", () => {
  const b = bootSector();
  let asked = -1n;
  parseNtfsBootSector(b, { seekLastSector: (o) => (asked = o, true) });
  assert.equal(asked, 32766n * 512n);
  assert.throws(
    () => parseNtfsBootSector(b, { seekLastSector: () => false }),
    (e: unknown) =>
      e instanceof CorruptImageError &&
      e.details.compat!.startsWith("Failed to read last sector (32766): Invalid argument\nHINTS:"),
  );
  // A negative sector count is reported with libntfs's signed cluster count.
  new DataView(b.buffer).setBigInt64(0x28, -16n, true);
  assert.throws(
    () => parseNtfsBootSector(b),
    (e: unknown) =>
      e instanceof CorruptImageError &&
      e.details.compat ===
        "$MFT LCN (4) or $MFTMirr LCN (2047) is greater than the number of clusters (-2).",
  );
});

Deno.test("protectFixups() and undoFixups() round-trip and detect a torn write", () => {
  const rec = new Uint8Array(1024);
  rec.set([0x46, 0x49, 0x4c, 0x45, 0x30, 0, 3, 0]);
  rec[0x30] = 0xff; // USN 0x00ff
  rec[510] = 0x11, rec[511] = 0x22, rec[1022] = 0x33, rec[1023] = 0x44;
  const orig = rec.slice();
  assert.ok(protectFixups(rec));
  assert.equal(rec[0x30] | (rec[0x31]! << 8), 0x100);
  assert.deepEqual([rec[510], rec[511], rec[1022], rec[1023]], [0, 1, 0, 1]);
  const torn = rec.slice();
  torn[1022] = 9;
  assert.equal(undoFixups(torn), "torn");
  assert.equal(undoFixups(rec), "ok");
  // Everything but the update sequence array itself is back.
  orig.set(rec.subarray(0x30, 0x36), 0x30);
  assert.deepEqual(rec, orig);
  // A USN of 0xFFFF wraps to 1, never 0 or 0xFFFF.
  rec[0x30] = 0xfe, rec[0x31] = 0xff;
  protectFixups(rec);
  assert.equal(rec[0x30] | (rec[0x31]! << 8), 1);
  const bad = rec.slice();
  bad[6] = 5; // usa_count must be size / 512 + 1
  assert.equal(undoFixups(bad), "invalid");
  assert.equal(protectFixups(bad), false);
});

Deno.test("decodeRunlist() decodes lengths, signed deltas and holes; encodeRunlist() inverts it", () => {
  // 0x11: 1+1 bytes; 0x21: 1+2; delta -0x10 as 0xf0; 0x01: a 5-cluster hole.
  const mp = new Uint8Array([0x11, 4, 0x20, 0x21, 2, 0x00, 0x01, 0x11, 3, 0xf0, 0x01, 5, 0x00]);
  const runs = decodeRunlist(mp, 0, mp.length, 10);
  assert.deepEqual(runs, [
    { vcn: 10, lcn: 0x20, length: 4 },
    { vcn: 14, lcn: 0x120, length: 2 },
    { vcn: 16, lcn: 0x110, length: 3 },
    { vcn: 19, lcn: LCN_HOLE, length: 5 },
  ]);
  assert.deepEqual(decodeRunlist(encodeRunlist(runs), 0, 64, 10), runs);
});

Deno.test("decodeRunlist() follows libntfs: LCN -1 is a hole, zero-length holes vanish", () => {
  assert.deepEqual(decodeRunlist(new Uint8Array([0x11, 2, 0xff, 0]), 0, 4, 0), [
    { vcn: 0, lcn: LCN_HOLE, length: 2 },
  ]);
  assert.deepEqual(decodeRunlist(new Uint8Array([0x01, 0, 0x11, 1, 5, 0]), 0, 6, 0), [
    { vcn: 0, lcn: 5, length: 1 },
  ]);
});

Deno.test("decodeRunlist() round-trips seeded random runlists", () => {
  let seed = 42;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  for (let t = 0; t < 200; t++) {
    const runs: NtfsRun[] = [];
    let vcn = rnd(1000);
    const first = vcn;
    for (let i = 0, n = 1 + rnd(20); i < n; i++) {
      const length = 1 + rnd(i % 3 ? 70000 : 5);
      runs.push({ vcn, lcn: rnd(4) === 0 ? LCN_HOLE : rnd(2 ** 40), length });
      vcn += length;
    }
    const enc = encodeRunlist(runs);
    assert.deepEqual(decodeRunlist(enc, 0, enc.length, first), runs);
  }
});

const badRunlists: [string, number[], string][] = [
  ["a zero length byte count", [0x20, 1, 2, 0], "missing length in a mapping pair"],
  ["a zero-length real run", [0x11, 0, 5, 0], "zero-length run"],
  ["a negative run length", [0x11, 0xff, 5, 0], "run length must not be negative, found -1"],
  ["an LCN below -1", [0x11, 1, 0xfe, 0], "run LCN -2 is below -1"],
  ["a pair past the attribute end", [0x31, 1, 5], "mapping pair runs past the attribute"],
  ["a missing terminator", [0x11, 1, 5], "no terminator inside the attribute"],
];
for (const [what, bytes, msg] of badRunlists) {
  Deno.test(`decodeRunlist() rejects ${what}`, () => {
    assert.throws(
      () => decodeRunlist(new Uint8Array(bytes), 0, bytes.length, 0, 0x1000),
      (e: unknown) =>
        e instanceof CorruptImageError && e.message.includes(msg) && e.details.offset! >= 0x1000,
    );
  });
}

Deno.test("parseMftRecordHeader() and parseAttributes() read $MFT's record 0 (golden)", () => {
  const img = Deno.readFileSync(ntfsFixture("c4k"));
  const rec = img.slice(4 * 4096, 4 * 4096 + 1024);
  assert.equal(undoFixups(rec), "ok");
  const h = parseMftRecordHeader(rec, 0x4000)!;
  assert.equal(h.inUse, true);
  assert.equal(h.bytesAllocated, 1024);
  const attrs = parseAttributes(rec, h, 0x4000);
  assert.deepEqual(attrs.map((a) => a.type), [0x10, 0x30, 0x80, 0xb0]);
  const data = attrs[2]!;
  assert.equal(data.nonResident, true);
  assert.equal(data.runs[0]!.lcn, 4);
  // A broken attribute length is a corruption at its byte offset.
  const broken = rec.slice();
  broken[h.attrsOffset + 4] = 3;
  assert.throws(
    () => parseAttributes(broken, h, 0x4000),
    (e: unknown) =>
      e instanceof CorruptImageError && e.details.offset === 0x4000 + h.attrsOffset + 4,
  );
});

Deno.test("parseAttributeList() reads entries and rejects a short entry length", () => {
  const v = new Uint8Array(64);
  const dv = new DataView(v.buffer);
  dv.setUint32(0, 0x80, true);
  dv.setUint16(4, 32, true);
  v[6] = 2, v[7] = 26;
  dv.setBigUint64(8, 7n, true);
  dv.setUint32(16, 390, true);
  dv.setUint16(24, 3, true);
  dv.setUint16(26, 0x41, true), dv.setUint16(28, 0x42, true);
  const e = parseAttributeList(v.subarray(0, 32));
  assert.deepEqual(e, [{ type: 0x80, name: "AB", lowestVcn: 7, record: 390, instance: 3 }]);
  dv.setUint16(4, 12, true);
  assert.throws(
    () => parseAttributeList(v, 0x100),
    (x: unknown) => x instanceof CorruptImageError && x.details.offset === 0x104,
  );
});
