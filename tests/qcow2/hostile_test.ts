import assert from "node:assert/strict";
import { MemorySink, MemorySource } from "../../lib/io/mod.ts";
import { CorruptImageError, FsimageError } from "../../lib/errors.ts";
import { checkQcow2, Qcow2Reader, writeQcow2 } from "../../lib/qcow2/mod.ts";
import { makePattern, qemuImg, rng } from "./_util.ts";
import { needs, tempDir } from "../_helpers.ts";

const CS = 4096;
const SIZE = 3 * 1024 * 1024;

/** A valid v2 image (our writer, 4 KiB clusters) and where its tables are. */
function baseImage(version: 2 | 3 = 2) {
  const raw = makePattern(SIZE, 21);
  const sink = new MemorySink();
  const r = writeQcow2(new MemorySource(raw), sink, [{ offset: 0, length: SIZE }], {
    virtualSize: SIZE,
    clusterSize: CS,
    version,
  });
  const img = sink.bytes().slice();
  const dv = new DataView(img.buffer);
  const l1 = r.header.l1TableOffset;
  const l2 = Number(dv.getBigUint64(l1, false) & 0x00fffffffffffe00n);
  // First data entry of the first L2 table.
  let j = 0;
  while (dv.getBigUint64(l2 + j * 8, false) === 0n) j++;
  return { raw, img, dv, l1, l2, entry: l2 + j * 8, header: r.header };
}

/**
 * Opens and reads everything, and runs the consistency check; returns the reader's error, if
 * any. Fails on a non-domain error from either, or when the case is slow.
 */
function attempt(img: Uint8Array): unknown {
  const t0 = performance.now();
  let error: unknown;
  try {
    const r = Qcow2Reader.open(new MemorySource(img));
    const buf = new Uint8Array(1 << 20);
    for (let p = 0; p < r.size; p += buf.length) r.readAt(p, buf);
    r.allocatedExtents();
    r.map();
  } catch (e) {
    if (!(e instanceof FsimageError)) throw e;
    error = e;
  }
  try {
    checkQcow2(new MemorySource(img));
  } catch (e) {
    if (!(e instanceof FsimageError)) throw e;
  }
  assert.ok(performance.now() - t0 < 2000, "each case must be fast");
  return error;
}

function set64(img: Uint8Array, at: number, v: bigint): Uint8Array {
  const c = img.slice();
  new DataView(c.buffer).setBigUint64(at, v, false);
  return c;
}

Deno.test({
  name: "Qcow2Reader rejects tables and entries pointing outside the file or into metadata",
  permissions: "none",
  fn() {
    const b = baseImage();
    const copied = 1n << 63n;
    const dataOff = b.dv.getBigUint64(b.entry, false) & 0x00fffffffffffe00n;
    const cases: Array<[string, Uint8Array, RegExp]> = [
      [
        "L1 entry past EOF",
        set64(b.img, b.l1, copied | 0x10000000n),
        /L1 entry 0 .*passes the end/,
      ],
      ["L1 entry unaligned", set64(b.img, b.l1, copied | BigInt(b.l2 + 512)), /not a multiple/],
      [
        "L1 entry at the L1 table",
        set64(b.img, b.l1, copied | BigInt(b.l1)),
        /overlaps the L1 table/,
      ],
      [
        "L1 entry at the refcount table",
        set64(b.img, b.l1, copied | BigInt(b.header.refcountTableOffset)),
        /overlaps the refcount table/,
      ],
      ["L1 entry past 2^53", set64(b.img, b.l1, copied | 0x00f0000000000000n), /2\^53/],
      [
        "L2 entry past EOF",
        set64(b.img, b.entry, copied | 0x40000000n),
        /past the end of the file/,
      ],
      ["L2 entry unaligned", set64(b.img, b.entry, copied | (dataOff + 1024n)), /not a multiple/],
      [
        "L2 entry at the L1 table",
        set64(b.img, b.entry, copied | BigInt(b.l1)),
        /overlaps the L1 table/,
      ],
      [
        "L2 entry at an L2 table",
        set64(b.img, b.entry, copied | BigInt(b.l2)),
        /overlaps an L2 table/,
      ],
      [
        "zero flag in a v2 image",
        set64(b.img, b.entry, copied | dataOff | 1n),
        /zero cluster flag/,
      ],
      [
        "compressed entry past EOF",
        set64(b.img, b.entry, (1n << 62n) | 0x100000000n),
        /compressed data .*past the end/,
      ],
      [
        "compressed entry over the L2 table",
        set64(b.img, b.entry, (1n << 62n) | BigInt(b.l2 + 100)),
        /overlaps an L2 table/,
      ],
      [
        "compressed entry with garbage",
        set64(b.img, b.entry, (1n << 62n) | (3n << 58n) | dataOff),
        /does not decompress|decompresses to/,
      ],
      ["L1 table offset unaligned, near EOF", set64(b.img, 0x28, BigInt(b.img.length - 8)), /./],
    ];
    // (An offset of 0 cannot point at the header: it means "unallocated".)
    for (const [name, img, msg] of cases) {
      const e = attempt(img);
      assert.ok(e instanceof FsimageError, `${name}: expected an error`);
      assert.match((e as Error).message, msg, name);
      if (e instanceof CorruptImageError && e.details.offset !== undefined) {
        assert.ok(Number.isSafeInteger(e.details.offset));
      }
    }
  },
});

Deno.test({
  name: "Qcow2Reader on truncated images: clean errors or correct data, never a crash",
  permissions: "none",
  fn() {
    const b = baseImage();
    const cuts = [0, 4, 8, 71, 72, 100, CS - 1, CS, b.l1 + 7, b.l2 + 100, b.l2 + CS];
    for (let k = 1; k <= 8; k++) cuts.push(Math.floor(b.img.length * k / 9));
    cuts.push(b.img.length - 1);
    for (const n of cuts) {
      const e = attempt(b.img.subarray(0, n));
      if (e === undefined) {
        // Only a cut inside the data area may open; the readable part must be right.
        assert.ok(n > b.l2 + CS, `cut at ${n} opened`);
      }
    }
  },
});

Deno.test({
  name: "Qcow2Reader survives seeded random corruption of cluster 0, the L1 and the L2 tables",
  permissions: "none",
  fn() {
    for (const version of [2, 3] as const) {
      const b = baseImage(version);
      const next = rng(1234 + version);
      const regions = [[0, 112], [b.l1, 16], [b.l2, CS]] as const;
      let errors = 0;
      for (let i = 0; i < 300; i++) {
        const img = b.img.slice();
        const flips = 1 + (next() % 4);
        for (let f = 0; f < flips; f++) {
          const [start, len] = regions[next() % regions.length]!;
          const at = start + (next() % len);
          img[at] = img[at]! ^ (1 << (next() % 8));
        }
        if (attempt(img) !== undefined) errors++;
      }
      assert.ok(errors > 0);
    }
  },
});

Deno.test({
  name: "Qcow2Reader bounds memory by the file: a huge l1_size in a small file is refused",
  permissions: "none",
  fn() {
    const b = baseImage();
    // 2^40-byte disk needs 524288 L1 entries (4 MiB) that the 1.5 MiB file cannot hold.
    let img = set64(b.img, 0x18, 1n << 40n);
    img = img.slice();
    new DataView(img.buffer).setUint32(0x24, 524288, false);
    const e = attempt(img);
    assert.ok(e instanceof CorruptImageError);
    assert.match(e.message, /L1 table/);
  },
});

Deno.test({
  name: "Qcow2Reader survives seeded corruption of qemu-img images (zlib, zstd, extended L2)",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    Deno.writeFileSync(`${dir.path}/p.raw`, makePattern(1 << 20, 9));
    const variants = [
      ["-c", "-o", "cluster_size=4096"],
      ["-c", "-o", "cluster_size=4096,compression_type=zstd"],
      ["-o", "extended_l2=on,cluster_size=16k"],
    ];
    for (const v of variants) {
      const img = `${dir.path}/v.qcow2`;
      qemuImg("convert", "-f", "raw", "-O", "qcow2", ...v, `${dir.path}/p.raw`, img);
      const base = Deno.readFileSync(img);
      assert.equal(attempt(base), undefined, `${v.join(" ")} must read cleanly`);
      const dv = new DataView(base.buffer);
      const cs = 2 ** dv.getUint32(20);
      const l1 = Number(dv.getBigUint64(40));
      const l2 = Number(dv.getBigUint64(l1) & 0x00fffffffffffe00n);
      const next = rng(99);
      const regions: Array<[number, number]> = [[0, 112], [l1, 8], [l2, cs], [
        l2 + cs,
        Math.max(1, base.length - l2 - cs),
      ]];
      for (let i = 0; i < 200; i++) {
        const b = base.slice();
        const flips = 1 + (next() % 3);
        for (let f = 0; f < flips; f++) {
          const [start, len] = regions[next() % regions.length]!;
          const at = Math.min(b.length - 1, start + (next() % len));
          b[at] = b[at]! ^ (1 << (next() % 8));
        }
        attempt(b);
      }
    }
  },
});
