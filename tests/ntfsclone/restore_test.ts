import assert from "node:assert/strict";
import { CorruptImageError, UnsupportedFeatureError, WriteError } from "../../lib/errors.ts";
import { MemorySink } from "../../lib/io/memory.ts";
import type { Sink } from "../../lib/io/types.ts";
import {
  createNtfscloneHeader,
  type NtfscloneHeader,
  NtfscloneImageReader,
  NtfscloneImageWriter,
  restoredSize,
  restoreNtfsclone,
} from "../../lib/ntfsclone/mod.ts";
import { memReader, syntheticImage } from "./_util.ts";

function build(header: NtfscloneHeader, f: (w: NtfscloneImageWriter) => void): Uint8Array {
  const sink = new MemorySink({ kind: "stream" });
  const w = new NtfscloneImageWriter(sink, header, { bufferSize: 100 });
  f(w);
  w.finish();
  return sink.bytes().slice();
}

/** The device bytes an image describes, gaps filled with `fill`. */
function expectedDevice(device: Uint8Array, image: Uint8Array, fill: number, size: number) {
  const out = new Uint8Array(size).fill(fill);
  const r = new NtfscloneImageReader(memReader(image));
  const cs = r.header.clusterSize;
  for (let c = r.next(); c; c = r.next()) {
    if (c.kind === "clusters") {
      out.set(device.subarray(c.lcn * cs, c.lcn * cs + c.data.length), c.lcn * cs);
    }
  }
  return out;
}

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error");
}

/** A sink that records writes without storing them (for huge offsets). */
class CountingSink implements Sink {
  readonly name = "counting";
  readonly kind: "file" | "device";
  readonly size: number;
  writes: Array<[number, number]> = [];
  constructor(kind: "file" | "device", size = 0) {
    this.kind = kind;
    this.size = size;
  }
  writeAt(offset: number, data: Uint8Array): void {
    this.writes.push([offset, data.length]);
  }
  close(): void {}
}

Deno.test({
  name: "restoreNtfsclone() writes clusters to a file sink and leaves gaps as holes",
  permissions: "none",
  fn() {
    const { image, device, header } = syntheticImage(21, {
      clusterSize: 512,
      nrClusters: 120,
      extra: 700,
    });
    const sink = new MemorySink();
    const r = restoreNtfsclone(memReader(image, 333), sink);
    assert.equal(r.end, 121 * 512);
    assert.equal(r.end, restoredSize(header));
    assert.equal(sink.size, r.end);
    assert.deepEqual(sink.bytes(), expectedDevice(device, image, 0, r.end));
    // Nothing is written for gaps: the writes cover exactly the stored payloads.
    assert.equal(sink.writes.reduce((n, [, l]) => n + l, 0), r.bytesWritten);
    assert.equal(r.zeroBytesWritten, 0);
    assert.equal(r.imageBytesRead, image.length);
  },
});

Deno.test({
  name: "restoreNtfsclone() to a device keeps old bytes in gaps and never writes past its end",
  permissions: "none",
  fn() {
    const { image, device, header } = syntheticImage(22, {
      clusterSize: 1024,
      nrClusters: 80,
      extra: 512,
    });
    const need = restoredSize(header);
    assert.equal(need, device.length);
    const dev = new MemorySink({ kind: "device", capacity: need, fill: 0xaa });
    restoreNtfsclone(memReader(image), dev);
    assert.deepEqual(dev.bytes(), expectedDevice(device, image, 0xaa, need));
    for (const [off, len] of dev.writes) assert.ok(off + len <= need);
    // One byte short: refused before anything is written.
    const small = new MemorySink({ kind: "device", capacity: need - 1, fill: 0xaa });
    const e = catchError(() => restoreNtfsclone(memReader(image), small));
    assert.ok(e instanceof WriteError && e.code === "NO_SPACE", String(e));
    assert.equal(small.writes.length, 0);
  },
});

Deno.test({
  name: "restoreNtfsclone() to a stream writes zeros for gaps",
  permissions: "none",
  fn() {
    const { image, device } = syntheticImage(23, { clusterSize: 512, nrClusters: 64, extra: 300 });
    const out = new MemorySink({ kind: "stream" });
    const r = restoreNtfsclone(memReader(image), out);
    assert.deepEqual(out.bytes(), expectedDevice(device, image, 0, device.length));
    assert.equal(r.zeroBytesWritten + r.bytesWritten, device.length);
  },
});

Deno.test({
  name: "restoreNtfsclone() refuses a metadata image on a stream, as ntfsclone does",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: 512,
      deviceSize: 8 * 512,
      nrClusters: 7,
      inuse: 2,
    });
    const leadingGap = build(header, (w) => {
      w.gap(2);
      w.clusters(new Uint8Array(512));
      w.gap(4);
      w.clusters(new Uint8Array(512));
    });
    const backwards = build(header, (w) => {
      w.clusters(new Uint8Array(512 * 3));
      w.gap(-1);
      w.clusters(new Uint8Array(512));
      w.gap(4);
      w.clusters(new Uint8Array(512));
    });
    for (const image of [leadingGap, backwards]) {
      const e = catchError(() =>
        restoreNtfsclone(memReader(image), new MemorySink({ kind: "stream" }))
      );
      assert.ok(e instanceof UnsupportedFeatureError, String(e));
      assert.equal(e.compat, "Cannot restore a metadata image to stdout");
      // A file takes it: the later record wins.
      const f = new MemorySink();
      restoreNtfsclone(memReader(image), f);
    }
  },
});

Deno.test({
  name: "restoreNtfsclone() of an image without backup boot ends the file at the last write",
  permissions: "none",
  fn() {
    const header = {
      ...createNtfscloneHeader({
        clusterSize: 512,
        deviceSize: 10 * 512 + 512,
        nrClusters: 10,
        inuse: 2,
      }),
      minorVersion: 0,
    };
    const image = build(header, (w) => {
      w.clusters(new Uint8Array(1024).fill(5));
      w.gap(8);
    });
    const f = new MemorySink();
    const r = restoreNtfsclone(memReader(image), f);
    assert.equal(r.missingBackupBoot, true);
    assert.equal(f.size, 1024);
    const s = new MemorySink({ kind: "stream" });
    restoreNtfsclone(memReader(image), s);
    assert.equal(s.size, 10 * 512);
  },
});

Deno.test({
  name: "restoreNtfsclone() dryRun decodes everything and writes nothing",
  permissions: "none",
  fn() {
    const { image } = syntheticImage(24, { nrClusters: 50 });
    let last: [number, number] = [0, 0];
    const r = restoreNtfsclone(memReader(image), null, {
      dryRun: true,
      onProgress: (d, t) => (last = [d, t]),
    });
    assert.equal(r.imageBytesRead, image.length);
    assert.equal(last[0], r.clusters);
  },
});

Deno.test({
  name: "restoreNtfsclone() rejects a truncation at every byte with the exact offset",
  permissions: "none",
  fn() {
    const { image, header } = syntheticImage(31, { clusterSize: 256, nrClusters: 24, extra: 256 });
    // The command stream is at a boundary with position nrClusters right before the last NEXT.
    const lastNext = image.length - 1 - 256;
    for (let len = 0; len < image.length; len++) {
      const cut = image.subarray(0, len);
      try {
        const r = restoreNtfsclone(memReader(cut, 97), new MemorySink(), {
          bufferSize: 4096,
          batchSize: 4096,
        });
        assert.equal(len, lastNext, `truncation at ${len} accepted`);
        assert.equal(r.missingBackupBoot, true);
      } catch (e) {
        assert.ok(e instanceof CorruptImageError, `at ${len}: ${e}`);
        assert.equal(e.details.offset, len, `at ${len}: ${e.message}`);
      }
    }
    assert.equal(header.nrClusters, 24);
  },
});

Deno.test({
  name: "restoreNtfsclone() rejects every bad command byte with ntfsclone's wording",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: 512,
      deviceSize: 4 * 512,
      nrClusters: 3,
      inuse: 1,
    });
    const image = build(header, (w) => {
      w.clusters(new Uint8Array(512));
      w.gap(2);
      w.clusters(new Uint8Array(512));
    });
    const at = 56 + 513; // the gap command
    for (let b = 2; b < 256; b++) {
      const m = image.slice();
      m[at] = b;
      const e = catchError(() => restoreNtfsclone(memReader(m), new MemorySink()));
      assert.ok(e instanceof CorruptImageError, String(e));
      assert.equal(e.details.offset, at);
      assert.equal(
        e.details.compat,
        `Invalid command code ${(b << 24) >> 24} at input offset 0x239`,
      );
    }
  },
});

Deno.test({
  name: "restoreNtfsclone() rejects zero, out-of-range and huge gap counts",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: 512,
      deviceSize: 4 * 512,
      nrClusters: 3,
      inuse: 1,
    });
    const image = build(header, (w) => {
      w.clusters(new Uint8Array(512));
      w.gap(2);
      w.clusters(new Uint8Array(512));
    });
    const at = 56 + 513;
    const cases: Array<[bigint, string]> = [
      [0n, "Bad offset at input location 0x239"],
      [3n, `restore_image: corrupt image at input offset ${at}`],
      [-2n, `restore_image: corrupt image at input offset ${at}`],
      [1n << 62n, `restore_image: corrupt image at input offset ${at}`],
      [-(1n << 62n), `restore_image: corrupt image at input offset ${at}`],
      [1n << 53n, `restore_image: corrupt image at input offset ${at}`],
      [-(1n << 63n), `restore_image: corrupt image at input offset ${at}`],
    ];
    for (const [count, compat] of cases) {
      const m = image.slice();
      new DataView(m.buffer).setBigInt64(at + 1, count, true);
      const e = catchError(() => restoreNtfsclone(memReader(m), new MemorySink()));
      assert.ok(e instanceof CorruptImageError, String(e));
      assert.equal(e.details.offset, at);
      assert.equal(e.details.compat, compat, `count ${count}`);
    }
  },
});

Deno.test({
  name: "restoreNtfsclone() handles a 2^40-cluster header with bounded memory and time",
  permissions: "none",
  fn() {
    const nr = 2 ** 40;
    const header = createNtfscloneHeader({
      clusterSize: 4096,
      deviceSize: nr * 4096 + 4096,
      nrClusters: nr,
      inuse: 2,
    });
    const image = build(header, (w) => {
      w.clusters(new Uint8Array(4096).fill(1));
      w.gap(nr - 1);
      w.clusters(new Uint8Array(4096).fill(2));
    });
    const sink = new CountingSink("file");
    const t0 = performance.now();
    const r = restoreNtfsclone(memReader(image), sink);
    assert.ok(performance.now() - t0 < 2000);
    assert.deepEqual(sink.writes, [[0, 4096], [nr * 4096, 4096]]);
    assert.equal(r.end, (nr + 1) * 4096);
    // A device of the volume's size minus one byte is refused up front.
    const dev = new CountingSink("device", nr * 4096 + 4095);
    assert.throws(() => restoreNtfsclone(memReader(image), dev), WriteError);
    assert.equal(dev.writes.length, 0);
  },
});

Deno.test({
  name: "NtfscloneImageWriter refuses gaps and clusters outside the volume",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: 512,
      deviceSize: 4 * 512 + 100,
      nrClusters: 4,
      inuse: 1,
    });
    const w = new NtfscloneImageWriter(new MemorySink({ kind: "stream" }), header);
    assert.throws(() => w.gap(-1), RangeError);
    assert.throws(() => w.gap(5), RangeError);
    assert.throws(() => w.gap(1.5), RangeError);
    assert.throws(() => w.clusters(new Uint8Array(100)), RangeError);
    w.gap(4);
    assert.throws(() => w.clusters(new Uint8Array(99)), RangeError);
    w.clusters(new Uint8Array(512)); // whole cluster given, only the 100-byte payload stored
    assert.throws(() => w.clusters(new Uint8Array(512)), RangeError);
    assert.equal(w.finish(), 56 + 9 + 101);
    assert.throws(() => w.gap(-1), TypeError);
  },
});
