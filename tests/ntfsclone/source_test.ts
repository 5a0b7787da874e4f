import assert from "node:assert/strict";
import { MemorySink, MemorySource } from "../../lib/io/memory.ts";
import {
  createNtfscloneHeader,
  NtfscloneImageSource,
  NtfscloneImageWriter,
  restoredSize,
  restoreNtfsclone,
} from "../../lib/ntfsclone/mod.ts";
import { memReader, prng, syntheticImage } from "./_util.ts";

/** What a restore to an empty file gives, padded with zeros to `size`. */
function restored(image: Uint8Array, size: number): Uint8Array {
  const sink = new MemorySink();
  restoreNtfsclone(memReader(image), sink);
  const out = new Uint8Array(size);
  out.set(sink.bytes().subarray(0, size));
  return out;
}

function checkRandomReads(image: Uint8Array, seed: number): void {
  const src = NtfscloneImageSource.open(new MemorySource(image));
  const want = restored(image, src.size);
  const rnd = prng(seed);
  const whole = new Uint8Array(src.size + 100);
  assert.equal(src.readAt(0, whole), src.size);
  assert.deepEqual(whole.subarray(0, src.size), want);
  for (let i = 0; i < 300; i++) {
    const off = (rnd() * (src.size + 50)) | 0;
    const len = (rnd() * 5000) | 0;
    const buf = new Uint8Array(len).fill(0xcc);
    const n = src.readAt(off, buf);
    assert.equal(n, Math.max(0, Math.min(len, src.size - off)));
    assert.deepEqual(buf.subarray(0, n), want.subarray(off, off + n), `read ${off}+${len}`);
  }
}

Deno.test({
  name: "NtfscloneImageSource reads the device exactly as a restore writes it",
  permissions: "none",
  fn() {
    for (const [seed, cs, extra] of [[1, 512, 300], [2, 1024, 1024], [3, 256, 2000]]) {
      const { image, header } = syntheticImage(seed!, {
        clusterSize: cs,
        nrClusters: 90,
        extra,
      });
      checkRandomReads(image, seed!);
      assert.equal(NtfscloneImageSource.open(new MemorySource(image)).size, restoredSize(header));
    }
  },
});

Deno.test({
  name: "NtfscloneImageSource lets later records win in an image that goes backwards",
  permissions: "none",
  fn() {
    const cs = 512;
    const header = createNtfscloneHeader({
      clusterSize: cs,
      deviceSize: 40 * cs + cs,
      nrClusters: 40,
      inuse: 0,
    });
    const sink = new MemorySink({ kind: "stream" });
    const w = new NtfscloneImageWriter(sink, header);
    const fill = (n: number, v: number) => new Uint8Array(n * cs).fill(v);
    w.gap(5);
    w.clusters(fill(10, 1)); // 5..14
    w.gap(-12); // back to 3
    w.clusters(fill(4, 2)); // 3..6
    w.gap(2); // 9
    w.clusters(fill(2, 3)); // 9..10
    w.gap(-11); // 0
    w.clusters(fill(1, 4)); // 0
    w.gap(12); // 13
    w.clusters(fill(5, 5)); // 13..17
    w.gap(21); // 39
    w.clusters(fill(2, 6)); // 39, 40
    w.finish();
    const image = sink.bytes().slice();
    checkRandomReads(image, 9);
    const src = NtfscloneImageSource.open(new MemorySource(image));
    const b = new Uint8Array(src.size);
    src.readAt(0, b);
    const at = (lcn: number) => b[lcn * cs + 7];
    assert.deepEqual(
      [0, 1, 3, 6, 7, 8, 9, 10, 11, 12, 13, 17, 18, 39, 40].map(at),
      [4, 0, 2, 2, 1, 1, 3, 3, 1, 1, 5, 5, 0, 6, 6],
    );
  },
});
