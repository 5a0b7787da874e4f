import assert from "node:assert/strict";
import { mustRun, needs, run, sha256, tempDir } from "../_helpers.ts";
import { FaultySource, MemorySink, MemorySource } from "../../lib/io/mod.ts";
import { ReadError } from "../../lib/errors.ts";
import {
  checkQcow2,
  Qcow2Reader,
  writeQcow2,
  type WriteQcow2Options,
} from "../../lib/qcow2/mod.ts";
import type { ByteExtent } from "../../lib/_internal/extents.ts";
import { assertMapMatchesQemu, makePattern, qemuCheck, qemuDataExtents, qemuImg } from "./_util.ts";

const SIZE = 2 * 1024 * 1024 + 5 * 512;

function write(
  raw: Uint8Array,
  extents: readonly ByteExtent[],
  options: WriteQcow2Options,
  kind: "file" | "stream" = "file",
): { bytes: Uint8Array; result: ReturnType<typeof writeQcow2> } {
  const sink = new MemorySink({ kind });
  const result = writeQcow2(new MemorySource(raw), sink, extents, options);
  assert.equal(sink.size, result.imageSize);
  assert.equal(result.imageSize % options.clusterSize, 0);
  return { bytes: sink.bytes().slice(), result };
}

/** The raw disk a set of extents describes: the source's bytes inside them, zeros elsewhere. */
function expectedRaw(raw: Uint8Array, extents: readonly ByteExtent[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (const e of extents) out.set(raw.subarray(e.offset, e.offset + e.length), e.offset);
  return out;
}

function checkWithQemu(dir: string, name: string, img: Uint8Array, expected: Uint8Array): void {
  const q = `${dir}/${name}.qcow2`, r = `${dir}/${name}.raw`;
  Deno.writeFileSync(q, img);
  Deno.writeFileSync(r, expected);
  const c = qemuCheck(q);
  assert.equal(c.code, 0, `${name}: qemu-img check: ${c.out}`);
  const json = JSON.parse(qemuImg("check", "--output=json", q));
  assert.equal(json["check-errors"], 0);
  assert.equal(json.leaks, undefined);
  assert.equal(json.corruptions, undefined);
  assert.equal(json["image-end-offset"], img.length);
  const ours = checkQcow2(new MemorySource(img));
  assert.deepEqual([ours.corruptions, ours.leaks, ours.imageEndOffset], [0, 0, img.length]);
  const cmp = run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", r, q]);
  assert.equal(cmp.code, 0, `${name}: qemu-img compare: ${cmp.out}${cmp.err}`);
}

for (const cs of [512, 1024, 2048, 4096, 65536, 2 * 1024 * 1024]) {
  for (const version of [2, 3] as const) {
    Deno.test({
      name:
        `writeQcow2() v${version}, ${cs}-byte clusters: qemu-img check clean, compare equal, stream = file`,
      ...needs("qemu-img"),
      fn() {
        using dir = tempDir("fsimage-qcow2-");
        const raw = makePattern(SIZE, cs + version);
        const all = [{ offset: 0, length: SIZE }];
        const opts = { virtualSize: SIZE, clusterSize: cs, version };
        const f = write(raw, all, opts);
        const s = write(raw, all, opts, "stream");
        assert.equal(sha256(s.bytes), sha256(f.bytes));
        assert.deepEqual({ ...s.result, bytesRead: 0 }, { ...f.result, bytesRead: 0 });
        assert.equal(sha256(write(raw, all, opts).bytes), sha256(f.bytes), "deterministic");
        checkWithQemu(dir.path, `v${version}-${cs}`, f.bytes, raw);
        const info = JSON.parse(
          qemuImg("info", "--output=json", `${dir.path}/v${version}-${cs}.qcow2`),
        );
        assert.equal(info["cluster-size"], cs);
        assert.equal(info["virtual-size"], SIZE);
        assert.equal(info["format-specific"].data.compat, version === 2 ? "0.10" : "1.1");
        // Our reader agrees, and zero clusters were not stored.
        const r = Qcow2Reader.open(new MemorySource(f.bytes));
        const back = new Uint8Array(SIZE);
        r.readAt(0, back);
        assert.equal(sha256(back), sha256(raw));
        assert.deepEqual(
          r.allocatedExtents(),
          qemuDataExtents(`${dir.path}/v${version}-${cs}.qcow2`),
        );
        // qemu sees every data cluster at the file offset the writer planned: packed, ascending.
        const m = r.map();
        assertMapMatchesQemu(m, `${dir.path}/v${version}-${cs}.qcow2`);
        let next = f.result.header.l1TableOffset; // below any data
        for (const e of m) {
          if (e.kind !== "data") continue;
          assert.ok(e.hostOffset! >= next, "data in ascending guest order");
          next = e.hostOffset! + e.length;
        }
        // The last data byte sits in the image's last cluster (a partial last guest cluster
        // maps fewer bytes than the cluster it occupies).
        assert.ok(next <= f.result.imageSize && next > f.result.imageSize - cs);
        let zero = 0;
        for (let c = 0; c * cs < SIZE; c++) {
          if (raw.subarray(c * cs, (c + 1) * cs).every((x) => x === 0)) zero++;
        }
        assert.equal(f.result.zeroClusters, zero);
      },
    });
  }
}

Deno.test({
  name: "writeQcow2() v2 output is read by the real e2image -r exactly (1k, 2k, 4k, 64k clusters)",
  ...needs("qemu-img", "e2image"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    for (const cs of [1024, 4096, 65536]) {
      const raw = makePattern(SIZE, cs);
      raw[SIZE - 1] = 0; // e2image -r always writes a zero at size - 1
      const { bytes } = write(raw, [{ offset: 0, length: SIZE }], {
        virtualSize: SIZE,
        clusterSize: cs,
      });
      Deno.writeFileSync(`${dir.path}/o.qcow2`, bytes);
      mustRun("e2image", ["-r", `${dir.path}/o.qcow2`, `${dir.path}/o.raw`]);
      // e2image copies whole clusters, so a partial last cluster comes back whole (zeros).
      const back = Deno.readFileSync(`${dir.path}/o.raw`);
      assert.ok(back.length === SIZE || back.length === Math.ceil(SIZE / cs) * cs);
      assert.equal(sha256(back.subarray(0, SIZE)), sha256(raw), `cs ${cs}`);
      assert.ok(back.subarray(SIZE).every((x) => x === 0));
      Deno.removeSync(`${dir.path}/o.raw`);
    }
  },
});

Deno.test({
  name: "writeQcow2() of an ext4's metadata is restored by e2image -r and passes e2fsck",
  ...needs("qemu-img", "e2image", "mkfs.ext4", "e2fsck"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const d = dir.path;
    Deno.mkdirSync(`${d}/files/a/b`, { recursive: true });
    for (let i = 0; i < 30; i++) {
      Deno.writeFileSync(`${d}/files/a/b/f${i}`, makePattern(1024 * (i + 1), i));
    }
    for (const bs of [1024, 2048, 4096, 65536]) {
      mustRun("mkfs.ext4", [
        "-q",
        "-F",
        "-b",
        String(bs),
        "-d",
        `${d}/files`,
        `${d}/fs.raw`,
        bs === 65536 ? "32M" : "16M",
      ]);
      const fs = Deno.readFileSync(`${d}/fs.raw`);
      // Allocated blocks of the qemu-img map of e2image -r's raw would need an ext walker; use
      // the whole disk: zero blocks are skipped, so only used blocks are stored.
      const { bytes, result } = write(fs, [{ offset: 0, length: fs.length }], {
        virtualSize: fs.length,
        clusterSize: bs,
      });
      assert.ok(result.zeroClusters > 0);
      Deno.writeFileSync(`${d}/fs.qcow2`, bytes);
      assert.equal(qemuCheck(`${d}/fs.qcow2`).code, 0);
      try {
        Deno.removeSync(`${d}/back.raw`);
      } catch { /* absent */ }
      mustRun("e2image", ["-r", `${d}/fs.qcow2`, `${d}/back.raw`]);
      const back = Deno.readFileSync(`${d}/back.raw`);
      assert.equal(back.length, fs.length);
      assert.equal(sha256(back.subarray(0, -1)), sha256(fs.subarray(0, -1)));
      mustRun("e2fsck", ["-fn", `${d}/back.raw`]);
    }
  },
});

Deno.test({
  name: "writeQcow2() stores only the selected extents; bytes outside them read as zeros",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const raw = makePattern(SIZE, 99).map((x) => x | 1); // no zero clusters
    const extents = [
      { offset: 100, length: 50 }, // inside cluster 0, unaligned
      { offset: 4096, length: 8192 },
      { offset: 12288, length: 1 }, // adjacent run, one byte
      { offset: 1 << 20, length: 65536 + 17 },
      { offset: SIZE - 512, length: 512 },
    ];
    for (const cs of [512, 4096, 65536]) {
      const opts = { virtualSize: SIZE, clusterSize: cs };
      const f = write(raw, extents, opts);
      assert.equal(sha256(write(raw, extents, opts, "stream").bytes), sha256(f.bytes));
      checkWithQemu(dir.path, `sel-${cs}`, f.bytes, expectedRaw(raw, extents, SIZE));
    }
  },
});

Deno.test({
  name: "writeQcow2() handles an empty disk, no extents, and sparse extents over a wide L1",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const e = write(new Uint8Array(0), [], { virtualSize: 0, clusterSize: 65536 });
    checkWithQemu(dir.path, "empty", e.bytes, new Uint8Array(0));
    const none = write(new Uint8Array(0), [], { virtualSize: 1 << 20, clusterSize: 4096 });
    checkWithQemu(dir.path, "none", none.bytes, new Uint8Array(1 << 20));
    // 64 MiB disk with 512-byte clusters: a 32-cluster L1 and scattered L2 tables.
    const big = 64 << 20;
    const src = new Uint8Array(big);
    const ext: ByteExtent[] = [];
    for (let i = 0; i < 40; i++) {
      const off = i * 1611 * 1024;
      src.fill(i + 1, off, off + 1536);
      ext.push({ offset: off, length: 1536 });
    }
    for (const kind of ["file", "stream"] as const) {
      const w = write(src, ext, { virtualSize: big, clusterSize: 512 }, kind);
      const tables = new Set<number>();
      for (const x of ext) {
        for (let c = Math.floor(x.offset / 512); c * 512 < x.offset + x.length; c++) {
          tables.add(Math.floor(c / 64));
        }
      }
      assert.equal(w.result.l2Tables, tables.size);
      assert.equal(w.result.dataClusters, 120);
      checkWithQemu(dir.path, `wide-${kind}`, w.bytes, src);
    }
  },
});

Deno.test({
  name: "writeQcow2() calls transform once per cluster in ascending order, before the zero test",
  permissions: "none",
  fn() {
    const cs = 1024;
    const raw = makePattern(256 * 1024, 5);
    raw.fill(0, 0, 8 * cs);
    const extents = [{ offset: 0, length: 100 * cs }, { offset: 120 * cs, length: 30 * cs }];
    const seen: Record<string, number[]> = { file: [], stream: [] };
    const out: Record<string, Uint8Array> = {};
    for (const kind of ["file", "stream"] as const) {
      let counter = 0; // global state, like e2image's scrambler
      const { bytes, result } = write(raw, extents, {
        virtualSize: raw.length,
        clusterSize: cs,
        transform(offset, block) {
          seen[kind]!.push(offset);
          if (block.some((x) => x !== 0)) block[0] = counter++ & 0xff;
          // zero the second cluster of the file: a transform may turn data into zeros
          if (offset === 9 * cs) block.fill(0);
        },
      }, kind);
      out[kind] = bytes;
      assert.equal(result.zeroClusters, kind === "file" ? 9 : 8);
    }
    const want: number[] = [];
    for (let c = 0; c < 100; c++) want.push(c * cs);
    for (let c = 120; c < 150; c++) want.push(c * cs);
    assert.deepEqual(seen.file, want);
    assert.deepEqual(seen.stream, want);
    // The stream stores the cluster the transform zeroed (planned before it ran); otherwise equal.
    const rf = Qcow2Reader.open(new MemorySource(out.file!));
    const rs = Qcow2Reader.open(new MemorySource(out.stream!));
    const a = new Uint8Array(raw.length), b = new Uint8Array(raw.length);
    rf.readAt(0, a);
    rs.readAt(0, b);
    assert.equal(sha256(a), sha256(b));
    assert.equal(a[10 * cs], 2);
  },
});

Deno.test({
  name: "writeQcow2() to a stream refuses a transform that turns a zero cluster into data",
  permissions: "none",
  fn() {
    const raw = new Uint8Array(64 * 1024);
    assert.throws(
      () =>
        write(raw, [{ offset: 0, length: raw.length }], {
          virtualSize: raw.length,
          clusterSize: 4096,
          transform: (_o, b) => void (b[0] = 1),
        }, "stream"),
      TypeError,
    );
  },
});

Deno.test({
  name: "writeQcow2() leaves unreadable clusters out when onReadError accepts, else throws",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const cs = 4096;
    const raw = makePattern(SIZE, 8).map((x) => x | 1);
    const bad = [{ offset: 5 * cs + 100, length: 10 }, { offset: 300 * cs, length: 3 * cs }];
    const extents = [{ offset: 0, length: SIZE }];
    const seen: Array<[number, number]> = [];
    const outs: Uint8Array[] = [];
    for (const kind of ["file", "stream"] as const) {
      seen.length = 0;
      const sink = new MemorySink({ kind });
      const src = new FaultySource(new MemorySource(raw), bad);
      const r = writeQcow2(src, sink, extents, {
        virtualSize: SIZE,
        clusterSize: cs,
        onReadError: (e, off, len) => {
          assert.ok(e instanceof ReadError);
          seen.push([off, len]);
          return true;
        },
      });
      assert.deepEqual(seen, [[5 * cs, cs], [300 * cs, cs], [301 * cs, cs], [302 * cs, cs]]);
      assert.equal(r.unreadableClusters, 4);
      outs.push(sink.bytes().slice());
    }
    assert.equal(sha256(outs[0]!), sha256(outs[1]!));
    const expected = raw.slice();
    expected.fill(0, 5 * cs, 6 * cs);
    expected.fill(0, 300 * cs, 303 * cs);
    checkWithQemu(dir.path, "faulty", outs[0]!, expected);
    assert.throws(
      () =>
        writeQcow2(new FaultySource(new MemorySource(raw), bad), new MemorySink(), extents, {
          virtualSize: SIZE,
          clusterSize: cs,
        }),
      ReadError,
    );
  },
});

Deno.test({
  name: "writeQcow2() reports progress up to the total and rejects bad options",
  permissions: "none",
  fn() {
    const raw = makePattern(1 << 20, 4);
    let last: [number, number] = [0, 0];
    write(raw, [{ offset: 0, length: raw.length }], {
      virtualSize: raw.length,
      clusterSize: 4096,
      bufferSize: 65536,
      onProgress: (d, t) => {
        assert.ok(d >= last[0]);
        last = [d, t];
      },
    });
    assert.deepEqual(last, [1 << 20, 1 << 20]);
    const bad: Array<Partial<WriteQcow2Options>> = [
      { clusterSize: 256 },
      { clusterSize: 3000 },
      { clusterSize: 4 << 20 },
      { virtualSize: -1 },
      { virtualSize: 1000 },
    ];
    for (const b of bad) {
      assert.throws(
        () =>
          writeQcow2(new MemorySource(raw), new MemorySink(), [], {
            virtualSize: raw.length,
            clusterSize: 4096,
            ...b,
          }),
        RangeError,
      );
    }
    assert.throws(
      () =>
        writeQcow2(new MemorySource(raw), new MemorySink(), [{ offset: 0, length: 2 << 20 }], {
          virtualSize: raw.length,
          clusterSize: 4096,
        }),
      RangeError,
    );
  },
});

Deno.test({
  name: "writeQcow2() down a real pipe sends exactly the bytes of the file output",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const raw = makePattern(SIZE, 77);
    Deno.writeFileSync(`${dir.path}/p.raw`, raw);
    const helper = new URL("./_pipe_writer.ts", import.meta.url).pathname;
    for (const cs of [1024, 65536]) {
      const r = run(Deno.execPath(), [
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-write",
        helper,
        `${dir.path}/p.raw`,
        String(cs),
      ]);
      assert.equal(r.code, 0, r.err);
      const file = write(raw, [{ offset: 0, length: SIZE }], {
        virtualSize: SIZE,
        clusterSize: cs,
      });
      assert.equal(r.stdout.length, file.bytes.length);
      assert.equal(sha256(r.stdout), sha256(file.bytes), `cs ${cs}`);
      Deno.writeFileSync(`${dir.path}/piped.qcow2`, r.stdout);
      assert.equal(qemuCheck(`${dir.path}/piped.qcow2`).code, 0);
    }
  },
});

Deno.test({
  name: "writeQcow2() output can be extended by qemu (qemu-io writes) and stays clean",
  ...needs("qemu-img", "qemu-io"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    for (const cs of [512, 65536]) {
      const raw = makePattern(SIZE, 31);
      const ext = [{ offset: 0, length: 512 * 1024 }, { offset: SIZE - 65536, length: 65536 }];
      const { bytes } = write(raw, ext, { virtualSize: SIZE, clusterSize: cs });
      const q = `${dir.path}/x.qcow2`;
      Deno.writeFileSync(q, bytes);
      mustRun("qemu-io", [
        "-f",
        "qcow2",
        "-c",
        "write -P 0x77 1M 300k",
        "-c",
        "write -P 0x78 100k 8k",
        q,
      ]);
      assert.equal(qemuCheck(q).code, 0, qemuCheck(q).out);
      const expected = expectedRaw(raw, ext, SIZE);
      expected.fill(0x77, 1 << 20, (1 << 20) + 300 * 1024);
      expected.fill(0x78, 100 * 1024, 108 * 1024);
      checkWithQemu(dir.path, `ext-${cs}`, Deno.readFileSync(q), expected);
    }
  },
});

Deno.test({
  name: "writeQcow2() with a refcount table of several clusters and dozens of refcount blocks",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    // 12 MiB of data in 512-byte clusters: 24576 data clusters, 256 refcounts per block, so
    // about 100 refcount blocks and a refcount table of 2 clusters (64 entries each).
    const size = 12 << 20;
    const raw = makePattern(size, 55).map((x) => x | 0x80);
    const { bytes, result } = write(raw, [{ offset: 0, length: size }], {
      virtualSize: size,
      clusterSize: 512,
    });
    assert.ok(result.header.refcountTableClusters >= 2);
    assert.equal(result.dataClusters, size / 512);
    checkWithQemu(dir.path, "many-rb", bytes, raw);
  },
});

Deno.test({
  name: "writeQcow2({ compress }) packs deflate streams that qemu reads and checks clean",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    // Mixed data, plus a run of highly compressible clusters so that many streams share a host
    // cluster (refcounts above 1).
    const raw = makePattern(SIZE, 66);
    raw.fill(0xaa, 1 << 20, (1 << 20) + 256 * 1024);
    for (const cs of [512, 4096, 65536, 2 * 1024 * 1024]) {
      for (const version of [2, 3] as const) {
        const opts = { virtualSize: SIZE, clusterSize: cs, version, compress: true };
        const all = [{ offset: 0, length: SIZE }];
        const f = write(raw, all, opts);
        const s = write(raw, all, opts, "stream");
        assert.equal(sha256(s.bytes), sha256(f.bytes), `stream = file, cs ${cs}`);
        assert.ok(f.result.compressedClusters > 0);
        const plain = write(raw, all, { ...opts, compress: false });
        assert.ok(f.bytes.length < plain.bytes.length, `smaller, cs ${cs}`);
        checkWithQemu(dir.path, `z${version}-${cs}`, f.bytes, raw);
        const r = Qcow2Reader.open(new MemorySource(f.bytes));
        const back = new Uint8Array(SIZE);
        r.readAt(0, back);
        assert.equal(sha256(back), sha256(raw));
        assertMapMatchesQemu(r.map(), `${dir.path}/z${version}-${cs}.qcow2`);
      }
    }
    assert.throws(
      () =>
        write(raw, [{ offset: 0, length: SIZE }], {
          virtualSize: SIZE,
          clusterSize: 4096,
          compress: true,
          transform: () => {},
        }, "stream"),
      TypeError,
    );
  },
});
