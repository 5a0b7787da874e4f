/** The metadata wipes and the cluster choices of metadata clones, on synthetic records. */
import assert from "node:assert/strict";
import {
  criticalLength,
  LCN_HOLE,
  logfileProbes,
  newWipeStats,
  NTFS_EPOCH_1970,
  protectFixups,
  undoFixups,
  wipeMftRecord,
} from "../../lib/ntfs/mod.ts";

function record(inUse: boolean): Uint8Array {
  const r = new Uint8Array(1024);
  const v = new DataView(r.buffer);
  r.set([0x46, 0x49, 0x4c, 0x45]);
  v.setUint16(4, 0x30, true); // usa_ofs
  v.setUint16(6, 3, true); // usa_count
  v.setUint16(0x10, 1, true);
  v.setUint16(0x14, 0x38, true); // attrs_offset
  v.setUint16(0x16, inUse ? 1 : 0, true);
  v.setUint32(0x1c, 1024, true);
  let p = 0x38;
  // $STANDARD_INFORMATION, resident, 48-byte value of 0x11.
  v.setUint32(p, 0x10, true), v.setUint32(p + 4, 72, true), v.setUint32(p + 16, 48, true);
  v.setUint16(p + 20, 24, true);
  r.fill(0x11, p + 24, p + 72);
  p += 72;
  // unnamed $DATA, resident, 5 bytes "hello".
  v.setUint32(p, 0x80, true), v.setUint32(p + 4, 32, true), v.setUint32(p + 16, 5, true);
  v.setUint16(p + 20, 24, true);
  r.set([104, 101, 108, 108, 111], p + 24);
  p += 32;
  v.setUint32(p, 0xffffffff, true);
  v.setUint32(0x18, p + 8, true); // bytes_in_use
  r.fill(0x5a, p + 8, 1000); // stale bytes after bytes_in_use
  v.setUint16(0x30, 7, true); // USN 7 after protect: 8
  protectFixups(r);
  return r;
}

Deno.test("wipeMftRecord() on an in-use user record: data, time stamps, unused bytes; same USN", () => {
  const r = record(true);
  const usn = r[0x30]! | (r[0x31]! << 8);
  const st = newWipeStats();
  wipeMftRecord(r, 40, {}, st);
  assert.equal(r[0x30]! | (r[0x31]! << 8), usn);
  assert.equal(undoFixups(r), "ok");
  const v = new DataView(r.buffer);
  for (let k = 0; k < 4; k++) {
    assert.equal(v.getBigUint64(0x38 + 24 + 8 * k, true), NTFS_EPOCH_1970);
  }
  assert.equal(r[0x38 + 24 + 32], 0x11, "other SI fields are kept");
  assert.deepEqual([...r.subarray(0x38 + 72 + 24, 0x38 + 72 + 29)], [0, 0, 0, 0, 0]);
  assert.deepEqual(st, {
    usedRecords: 0,
    unusedMftData: 1000 - (0x38 + 72 + 32 + 8),
    deletedMftData: 0,
    residentData: 5,
    timestampData: 32,
  });
});

Deno.test("wipeMftRecord() keeps system records' data; -t keeps time stamps", () => {
  const r = record(true);
  const st = newWipeStats();
  wipeMftRecord(r, 5, { preserveTimestamps: true }, st);
  undoFixups(r);
  assert.equal(r[0x38 + 24], 0x11);
  assert.equal(r[0x38 + 72 + 24], 104);
  assert.equal(st.unusedMftData + st.residentData + st.timestampData, 0);
});

Deno.test("wipeMftRecord() empties a deleted record after its header and sets the USN to 1", () => {
  const r = record(false);
  const st = newWipeStats();
  wipeMftRecord(r, 100, {}, st);
  assert.equal(r[0x30]! | (r[0x31]! << 8), 1);
  assert.equal(undoFixups(r), "ok");
  assert.ok(r.subarray(0x38).every((b) => b === 0));
  assert.ok(st.deletedMftData > 0 && st.unusedMftData > 0);
});

Deno.test("criticalLength() and logfileProbes() follow ntfsclone's choices", () => {
  const run = { vcn: 0, lcn: 100, length: 512 };
  assert.equal(criticalLength(2, 0x80, run, 4096, false), 4); // first 16 KiB of $LogFile
  assert.equal(criticalLength(2, 0x80, { vcn: 4, lcn: 104, length: 8 }, 4096, false), 0);
  assert.equal(criticalLength(2, 0x80, run, 4096, true), 512);
  assert.equal(criticalLength(8, 0x80, run, 4096, false), 0); // $BadClus data
  assert.equal(criticalLength(6, 0x80, run, 4096, false), 512); // $Bitmap
  assert.equal(criticalLength(40, 0x80, run, 4096, false), 0); // user data
  assert.equal(criticalLength(40, 0xa0, run, 4096, false), 512); // an index
  assert.deepEqual(
    logfileProbes([{ vcn: 0, lcn: 100, length: 4 }, { vcn: 4, lcn: LCN_HOLE, length: 4 }], 4096),
    [100, 100, 100, 100, 100, 101, 102],
  );
});
