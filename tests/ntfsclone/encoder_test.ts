import assert from "node:assert/strict";
import { ReadError } from "../../lib/errors.ts";
import { FaultySource } from "../../lib/io/faulty.ts";
import { MemorySink, MemorySource } from "../../lib/io/memory.ts";
import {
  createNtfscloneHeader,
  listNtfscloneClusters,
  NtfscloneImageReader,
  restoreNtfsclone,
  saveImage,
} from "../../lib/ntfsclone/mod.ts";
import { memReader, prng } from "./_util.ts";

function device(size: number, seed: number): Uint8Array {
  const rnd = prng(seed);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

const CS = 512;
const NR = 64;
const DEV = NR * CS + 300;
const USED = [{ start: 0, count: 5 }, { start: 9, count: 20 }, { start: 40, count: 1 }, {
  start: 63,
  count: 2,
}];

Deno.test({
  name: "saveImage() emits one gap per free run and a NEXT per used cluster",
  permissions: "none",
  fn() {
    const dev = device(DEV, 1);
    const header = createNtfscloneHeader({
      clusterSize: CS,
      deviceSize: DEV,
      nrClusters: NR,
      inuse: 27,
    });
    for (const bufferSize of [CS, 3 * CS + 7, 1 << 20]) {
      const out = new MemorySink({ kind: "stream" });
      const r = saveImage(new MemorySource(dev), out, USED, header, { bufferSize });
      assert.equal(r.clusters, 28);
      assert.equal(r.gaps, 3);
      assert.equal(r.imageSize, 56 + 27 * (1 + CS) + (1 + 300) + 3 * 9);
      assert.equal(out.size, r.imageSize);
      const list = listNtfscloneClusters(memReader(out.bytes()));
      assert.deepEqual(list.used, USED.map((e) => (e.start === 63 ? { start: 63, count: 2 } : e)));
      const restored = new MemorySink();
      restoreNtfsclone(memReader(out.bytes()), restored);
      for (const e of USED) {
        const a = e.start * CS, b = Math.min((e.start + e.count) * CS, DEV);
        assert.deepEqual(restored.bytes().subarray(a, b), dev.subarray(a, b));
      }
    }
  },
});

Deno.test({
  name: "saveImage() rejects unsorted, overlapping and out-of-volume used lists",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: CS,
      deviceSize: DEV,
      nrClusters: NR,
      inuse: 1,
    });
    const src = new MemorySource(new Uint8Array(DEV));
    for (
      const used of [
        [{ start: 5, count: 1 }, { start: 2, count: 1 }],
        [{ start: 0, count: 5 }, { start: 4, count: 1 }],
        [{ start: 64, count: 2 }],
        [{ start: 3, count: 0 }],
      ]
    ) {
      assert.throws(
        () => saveImage(src, new MemorySink({ kind: "stream" }), used, header),
        RangeError,
      );
    }
  },
});

Deno.test({
  name: "saveImage() applies the transform and recovers unreadable clusters through onReadError",
  permissions: "none",
  fn() {
    const dev = device(DEV, 2);
    const header = createNtfscloneHeader({
      clusterSize: CS,
      deviceSize: DEV,
      nrClusters: NR,
      inuse: 27,
    });
    const bad = { offset: 12 * CS + 100, length: 10 };
    const src = new FaultySource(new MemorySource(dev), [bad]);
    // Without a handler the read error escapes.
    assert.throws(
      () => saveImage(src, new MemorySink({ kind: "stream" }), USED, header),
      ReadError,
    );
    const seen: number[] = [];
    const out = new MemorySink({ kind: "stream" });
    const r = saveImage(src, out, USED, header, {
      bufferSize: 8 * CS,
      transform: (off, c) => {
        if (off === 0) c[0x48] = 0x5a; // e.g. a new serial number
      },
      onReadError: (_e, off, c) => {
        seen.push(off);
        c.fill(0x42);
        return true;
      },
    });
    assert.deepEqual(seen, [12 * CS]);
    assert.equal(r.clustersUnreadable, 1);
    const rd = new NtfscloneImageReader(memReader(out.bytes()));
    const restored = new MemorySink();
    restoreNtfsclone(rd, restored);
    const b = restored.bytes();
    assert.equal(b[0x48], 0x5a);
    assert.ok(b.subarray(12 * CS, 13 * CS).every((x) => x === 0x42));
    assert.deepEqual(b.subarray(13 * CS, 29 * CS), dev.subarray(13 * CS, 29 * CS));
    // A handler that gives up rethrows.
    assert.throws(
      () =>
        saveImage(src, new MemorySink({ kind: "stream" }), USED, header, {
          onReadError: () => false,
        }),
      ReadError,
    );
  },
});

Deno.test({
  name: "saveImage() reports a source shorter than the device as a read error",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: CS,
      deviceSize: DEV,
      nrClusters: NR,
      inuse: 27,
    });
    const short = new MemorySource(new Uint8Array(DEV - 200));
    assert.throws(
      () => saveImage(short, new MemorySink({ kind: "stream" }), USED, header),
      ReadError,
    );
  },
});

Deno.test({
  name: "saveImage() stores an empty backup-boot payload when the device ends at nr_clusters",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: CS,
      deviceSize: 8 * CS,
      nrClusters: 8,
      inuse: 3,
    });
    const dev = device(8 * CS, 3);
    for (
      const used of [[{ start: 0, count: 3 }, { start: 6, count: 3 }], [{ start: 0, count: 9 }]]
    ) {
      const out = new MemorySink({ kind: "stream" });
      const r = saveImage(new MemorySource(dev), out, used, header, { bufferSize: 2 * CS });
      const n = used.reduce((k, e) => k + e.count, 0);
      assert.equal(r.clusters, n);
      assert.equal(out.size, 56 + n + (n - 1) * CS + (used.length - 1) * 9);
      const list = listNtfscloneClusters(memReader(out.bytes()));
      assert.deepEqual(list.used, used);
      const restored = new MemorySink();
      const rr = restoreNtfsclone(memReader(out.bytes()), restored);
      assert.equal(rr.missingBackupBoot, false);
      assert.equal(rr.end, 8 * CS);
    }
  },
});
