/**
 * Golden tests on the committed image made by the real ntfsclone (tests/fixtures/ntfsclone,
 * built by its make_fixtures.sh): they need no tool, only read access to the fixtures.
 */
import assert from "node:assert/strict";
import { MemorySink, MemorySource } from "../../lib/io/memory.ts";
import {
  encodeNtfscloneHeader,
  listNtfscloneClusters,
  NtfscloneImageSource,
  parseNtfscloneHeader,
  restoreNtfsclone,
  saveImage,
} from "../../lib/ntfsclone/mod.ts";
import { readFixture, ROOT, sha256 } from "../_helpers.ts";
import { memReader } from "./_util.ts";

function sums(): Map<string, string> {
  const text = Deno.readTextFileSync(`${ROOT}/tests/fixtures/ntfsclone/SHA256SUMS`);
  return new Map(
    text.trim().split("\n").map((l) => {
      const [hash, name] = l.split(/\s+/);
      return [name!, hash!];
    }),
  );
}

Deno.test({
  name: "the committed ntfsclone image: header, restore and re-save match the real tool",
  permissions: { read: true },
  fn() {
    const image = readFixture("ntfsclone/small.ntfsclone.gz");
    const want = sums();
    assert.equal(sha256(image), want.get("small.ntfsclone"));

    const header = parseNtfscloneHeader(image.subarray(0, 56));
    assert.deepEqual(header, {
      majorVersion: 10,
      minorVersion: 1,
      clusterSize: 1024,
      deviceSize: 4 << 20,
      nrClusters: 4095,
      inuse: 1520,
      offsetToImageData: 56,
    });
    assert.deepEqual(encodeNtfscloneHeader(header), image.subarray(0, 56));

    // Restoring gives exactly what `ntfsclone --restore-image` gave.
    const raw = new MemorySink();
    const r = restoreNtfsclone(memReader(image, 4093), raw);
    assert.equal(sha256(raw.bytes()), want.get("small.raw"));
    assert.equal(r.clusters, header.inuse + 1);
    assert.equal(r.missingBackupBoot, false);

    // Saving the restored device with the image's own used set gives the image back.
    const { used } = listNtfscloneClusters(memReader(image));
    const again = new MemorySink({ kind: "stream" });
    saveImage(new MemorySource(raw.bytes()), again, used, header, { bufferSize: 64 << 10 });
    assert.equal(sha256(again.bytes()), want.get("small.ntfsclone"));

    // Random access to the image gives the restored device too.
    const src = NtfscloneImageSource.open(new MemorySource(image));
    const all = new Uint8Array(src.size);
    assert.equal(src.readAt(0, all), raw.size);
    assert.equal(sha256(all), want.get("small.raw"));
  },
});
