import assert from "node:assert/strict";
import * as fs from "node:fs";
import {
  copyExtents,
  copyStream,
  FaultySource,
  MemorySink,
  MemorySource,
  openSink,
  openSource,
  WindowSink,
  WindowSource,
} from "../../lib/io/mod.ts";
import { ReadError } from "../../lib/errors.ts";
import { allocatedBytes, mustRun, needs, run, runFsimage, tempDir } from "../_helpers.ts";

const BS = 4096;
/** A pseudo-random, never-zero block pattern. */
function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = (x & 0xff) | 1;
  }
  return b;
}
/** What the image must contain: the source inside extents, zeros elsewhere. */
function expected(
  src: Uint8Array,
  extents: { offset: number; length: number }[],
  size: number,
): Uint8Array {
  const out = new Uint8Array(size);
  for (const e of extents) out.set(src.subarray(e.offset, e.offset + e.length), e.offset);
  return out;
}

const SIZE = 64 * BS;
const SRC = pattern(SIZE);
SRC.fill(0, 20 * BS, 22 * BS); // zero blocks inside an extent
const EXTENTS = [
  { offset: 0, length: 3 * BS },
  { offset: 10 * BS, length: 20 * BS },
  { offset: 40 * BS + 512, length: 1000 }, // unaligned
  { offset: 63 * BS, length: BS },
];

Deno.test("copyExtents() to a memory file: extents copied, zero blocks and gaps left as holes", () => {
  const out = new MemorySink();
  const r = copyExtents(new MemorySource(SRC), out, EXTENTS, {
    size: SIZE + 100,
    bufferSize: 5 * BS,
  });
  assert.deepEqual(out.bytes(), expected(SRC, EXTENTS, SIZE + 100));
  assert.equal(r.blocksZero, 2);
  assert.equal(r.bytesWritten, 3 * BS + 18 * BS + 1000 + BS);
  for (const [off, len] of out.writes) {
    assert.ok(off + len <= 20 * BS || off >= 22 * BS, `zero blocks were written at ${off}+${len}`);
  }
});

Deno.test("copyExtents() to a stream emits every byte, in order, equal to the file output", () => {
  const file = new MemorySink();
  const stream = new MemorySink({ kind: "stream" });
  copyExtents(new MemorySource(SRC), file, EXTENTS, { size: SIZE });
  copyExtents(new MemorySource(SRC), stream, EXTENTS, { size: SIZE, bufferSize: 3 * BS });
  assert.deepEqual(stream.bytes(), file.bytes());
});

Deno.test("copyExtents() to a device writes only the extents and leaves the rest untouched", () => {
  const dev = new MemorySink({ kind: "device", capacity: SIZE, fill: 0xee });
  copyExtents(new MemorySource(SRC), dev, EXTENTS, { size: SIZE });
  const want = expected(SRC, EXTENTS, SIZE);
  const b = dev.bytes();
  let covered = 0;
  for (const e of EXTENTS) {
    assert.deepEqual(
      b.subarray(e.offset, e.offset + e.length),
      want.subarray(e.offset, e.offset + e.length),
    );
    covered += e.length;
  }
  assert.equal(b.filter((x) => x === 0xee).length, SIZE - covered);
});

Deno.test("copyExtents() refuses a device too small before writing anything", () => {
  const dev = new MemorySink({ kind: "device", capacity: SIZE - 1 });
  assert.throws(
    () => copyExtents(new MemorySource(SRC), dev, EXTENTS, { size: SIZE }),
    /too small/,
  );
  assert.equal(dev.writes.length, 0);
});

Deno.test("copyExtents() rejects unsorted, overlapping and out-of-range extents before writing", () => {
  for (
    const bad of [
      [{ offset: BS, length: BS }, { offset: 0, length: BS }],
      [{ offset: 0, length: 2 * BS }, { offset: BS, length: BS }],
      [{ offset: SIZE - BS, length: 2 * BS }],
    ]
  ) {
    const out = new MemorySink();
    assert.throws(() => copyExtents(new MemorySource(SRC), out, bad, { size: SIZE }), RangeError);
    assert.equal(out.writes.length, 0);
  }
});

Deno.test("copyExtents() with checkBeforeWrite writes only blocks that differ and counts the rest", () => {
  const out = new MemorySink();
  copyExtents(new MemorySource(SRC), out, EXTENTS, { size: SIZE, skipZeroBlocks: false });
  const before = out.writes.length;
  const again = copyExtents(new MemorySource(SRC), out, EXTENTS, {
    size: SIZE,
    checkBeforeWrite: true,
    skipZeroBlocks: false,
  });
  assert.equal(out.writes.length, before, "a second run wrote something");
  assert.equal(again.bytesWritten, 0);
  assert.equal(again.blocksIdentical, 3 + 20 + 1 + 1);
  // Change one block in the destination: exactly that block is rewritten.
  out.writeAt(12 * BS, new Uint8Array(BS).fill(9));
  const n = out.writes.length;
  const third = copyExtents(new MemorySource(SRC), out, EXTENTS, {
    size: SIZE,
    checkBeforeWrite: true,
  });
  assert.deepEqual(out.writes.slice(n), [[12 * BS, BS]]);
  assert.equal(third.blocksIdentical, 22); // 25 blocks: 2 zero (holes), 1 rewritten
  assert.equal(third.blocksZero, 2);
  assert.deepEqual(out.bytes(), expected(SRC, EXTENTS, SIZE));
});

Deno.test("copyExtents() with checkBeforeWrite on a new, shorter output does not hang and copies all", () => {
  const out = new MemorySink();
  const r = copyExtents(new MemorySource(SRC), out, EXTENTS, {
    size: SIZE,
    checkBeforeWrite: true,
  });
  assert.equal(r.blocksIdentical, 0);
  assert.deepEqual(out.bytes(), expected(SRC, EXTENTS, SIZE));
});

Deno.test("copyExtents() dry run writes nothing and reports every block it would write", () => {
  const out = new MemorySink();
  const seen: number[] = [];
  copyExtents(new MemorySource(SRC), out, EXTENTS, {
    size: SIZE,
    dryRun: true,
    onWrite: (off) => seen.push(off),
  });
  assert.equal(out.writes.length, 0);
  assert.equal(out.size, 0);
  assert.equal(seen.length, 3 + 18 + 1 + 1);
  assert.ok(!seen.includes(20 * BS) && seen.includes(22 * BS) && seen.includes(40 * BS + 512));
});

Deno.test("in-place moves in both directions give the right bytes, even by less than a block", () => {
  const moves: Array<[number, number]> = [[0, 3 * BS], [3 * BS, 0], [1000, 1512], [1512, 1000], [
    BS,
    BS + 1,
  ], [BS + 1, BS]];
  for (const [from, to] of moves) {
    const size = 40 * BS;
    const file = new MemorySink();
    const data = pattern(size + 4 * BS, 7);
    file.writeAt(0, data);
    const src = new WindowSource(
      { name: "same", size: file.size, readAt: (o, b) => file.readAt(o, b), close() {} },
      from,
      size,
    );
    copyExtents(src, new WindowSink(file, to), [{ offset: 0, length: size }], {
      size,
      bufferSize: 2 * BS,
      skipZeroBlocks: false,
      setLength: "extend",
      direction: to > from ? "backward" : "forward",
    });
    assert.deepEqual(
      file.bytes().subarray(to, to + size),
      data.subarray(from, from + size),
      `${from}->${to}`,
    );
    // What lies beyond the moved range is kept.
    assert.ok(file.size >= data.length);
    const tail = Math.max(from, to) + size;
    assert.deepEqual(file.bytes().subarray(tail), data.subarray(tail), `tail ${from}->${to}`);
  }
});

Deno.test("read errors: without a handler they throw; with one, only the bad blocks become zeros", () => {
  const bad = [{ offset: 11 * BS + 100, length: 10 }];
  assert.throws(
    () =>
      copyExtents(new FaultySource(new MemorySource(SRC), bad), new MemorySink(), EXTENTS, {
        size: SIZE,
      }),
    (e) => e instanceof ReadError && e.offset === 11 * BS + 100,
  );
  const out = new MemorySink();
  const errs: number[] = [];
  const r = copyExtents(new FaultySource(new MemorySource(SRC), bad), out, EXTENTS, {
    size: SIZE,
    onReadError: (_e, off) => (errs.push(off), true),
  });
  assert.deepEqual(errs, [11 * BS]);
  assert.equal(r.blocksUnreadable, 1);
  const want = expected(SRC, EXTENTS, SIZE);
  want.fill(0, 11 * BS, 12 * BS);
  assert.deepEqual(out.bytes(), want);
});

Deno.test("a source shorter than the extents claims: short reads reported per block", () => {
  const short = new MemorySource(SRC.subarray(0, 12 * BS));
  const errs: number[] = [];
  const out = new MemorySink();
  copyExtents(short, out, [{ offset: 10 * BS, length: 4 * BS }], {
    size: SIZE,
    onReadError: (_e, off) => (errs.push(off / BS), true),
  });
  assert.deepEqual(errs, [12, 13]);
  assert.equal(out.size, SIZE);
});

Deno.test("the transform hook sees each block once, in ascending order, before writing", () => {
  const seen: number[] = [];
  const out = new MemorySink();
  copyExtents(new MemorySource(SRC), out, EXTENTS, {
    size: SIZE,
    bufferSize: 4 * BS,
    transform: (off, blk) => {
      seen.push(off);
      blk.fill(5);
    },
  });
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  assert.equal(new Set(seen).size, seen.length);
  assert.equal(out.bytes()[10 * BS], 5);
  assert.equal(out.bytes()[20 * BS], 5); // transformed before the zero test
});

Deno.test("copyStream() copies a pipe-like input sparsely and sets the length", () => {
  let pos = 0;
  const input = {
    readSync(p: Uint8Array): number | null {
      if (pos >= SRC.length) return null;
      const n = Math.min(p.length, 65536, SRC.length - pos);
      p.set(SRC.subarray(pos, pos + n));
      pos += n;
      return n;
    },
  };
  const out = new MemorySink();
  assert.equal(copyStream(input, out, { bufferSize: 6 * BS }), SIZE);
  assert.deepEqual(out.bytes(), SRC);
  for (const [off, len] of out.writes) assert.ok(off + len <= 20 * BS || off >= 22 * BS);
});

// ---- real files, pipes and block devices ----

function writeSource(dir: string): string {
  const p = `${dir}/src.img`;
  Deno.writeFileSync(p, SRC);
  return p;
}

Deno.test("to a real file: holes stay holes (du) and the length is exact", () => {
  using d = tempDir();
  const big = 1024 * BS; // 4 MiB image, 3 small extents
  const src = `${d.path}/big.img`;
  const data = pattern(big, 3);
  Deno.writeFileSync(src, data);
  const ext = [{ offset: 0, length: BS }, { offset: 500 * BS, length: 2 * BS }, {
    offset: 1023 * BS,
    length: BS,
  }];
  {
    using s = openSource(src);
    using o = openSink(`${d.path}/out.img`, { mode: "create-new" });
    copyExtents(s, o, ext, { size: big + 12345 });
  }
  const st = Deno.statSync(`${d.path}/out.img`);
  assert.equal(st.size, big + 12345);
  assert.ok(
    allocatedBytes(`${d.path}/out.img`) <= 64 * 1024,
    `allocated ${allocatedBytes(`${d.path}/out.img`)}`,
  );
  assert.deepEqual(Deno.readFileSync(`${d.path}/out.img`), expected(data, ext, big + 12345));
});

Deno.test("the CLI copy to a pipe is byte-identical to the copy to a file, which is sparse", () => {
  using d = tempDir();
  const src = writeSource(d.path);
  const r1 = runFsimage(["copy", src, `${d.path}/out.img`]);
  assert.equal(r1.code, 0, r1.err);
  const r2 = runFsimage(["copy", src, "-"]);
  assert.equal(r2.code, 0, r2.err);
  assert.deepEqual(r2.stdout, SRC);
  assert.deepEqual(Deno.readFileSync(`${d.path}/out.img`), SRC);
  assert.ok(allocatedBytes(`${d.path}/out.img`) < SRC.length);
});

Deno.test("the CLI -c second run writes nothing; -n writes nothing at all", () => {
  using d = tempDir();
  const src = writeSource(d.path);
  const out = `${d.path}/out.img`;
  assert.equal(runFsimage(["copy", src, out]).code, 0);
  const mtime = Deno.statSync(out).mtime!.getTime();
  const r = runFsimage(["copy", "-c", "-f", src, out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /wrote 0, 64 blocks already identical/);
  assert.equal(Deno.statSync(out).mtime!.getTime(), mtime);
  const n = runFsimage(["copy", "-n", src, `${d.path}/never.img`]);
  assert.equal(n.code, 0, n.err);
  assert.ok(!fs.existsSync(`${d.path}/never.img`));
  assert.match(n.out, /^would write 4096 bytes at 0$/m);
});

Deno.test("the CLI moves a filesystem inside one file in both directions", () => {
  using d = tempDir();
  const img = `${d.path}/img`;
  const data = pattern(80 * BS, 9);
  const moves: Array<[number, number]> = [[0, 5 * BS + 512], [5 * BS + 512, 0]];
  for (const [from, to] of moves) {
    Deno.writeFileSync(img, data);
    const r = runFsimage([
      "copy",
      "-o",
      String(from),
      "-O",
      String(to),
      "-l",
      String(60 * BS),
      img,
      img,
    ]);
    assert.equal(r.code, 0, r.err);
    const got = Deno.readFileSync(img);
    assert.deepEqual(got.subarray(to, to + 60 * BS), data.subarray(from, from + 60 * BS));
    assert.equal(got.length, data.length, "the move cut what follows");
  }
});

Deno.test(
  "to a loop block device: only extents written, the rest untouched, size probed",
  needs("root", "losetup"),
  () => {
    using d = tempDir();
    const backing = `${d.path}/dev.img`;
    Deno.writeFileSync(backing, new Uint8Array(SIZE).fill(0xee));
    const src = writeSource(d.path);
    const loop = mustRun("losetup", ["-f", "--show", backing]).out.trim();
    let probe, fromDev;
    try {
      const probeScript = new URL("./_device_probe.ts", import.meta.url).pathname;
      probe = mustRun(Deno.execPath(), [
        "run",
        "-A",
        probeScript,
        loop,
        src,
        JSON.stringify(EXTENTS),
      ]);
      // A device redirected to stdin needs no permission flag at all, and its size is probed.
      fromDev = runFsimage(["copy", "-", "-"], { flags: [], stdin: loop });
      assert.equal(fromDev.code, 0, fromDev.err);
    } finally {
      run("losetup", ["-d", loop]);
    }
    assert.deepEqual(JSON.parse(probe.out), {
      sinkKind: "device",
      sinkSize: SIZE,
      sourceKind: "device",
      sourceSize: SIZE,
    });
    const want = new Uint8Array(SIZE).fill(0xee);
    for (const e of EXTENTS) want.set(SRC.subarray(e.offset, e.offset + e.length), e.offset);
    assert.deepEqual(Deno.readFileSync(backing), want);
    assert.deepEqual(fromDev.stdout, want);
  },
);
