import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import * as fs from "node:fs";
import { Buffer } from "node:buffer";
import { MemorySink, MemorySource } from "../../lib/io/mod.ts";
import { ExtVolume } from "../../lib/ext/mod.ts";
import { CorruptImageError } from "../../lib/errors.ts";
import {
  installNormalImage,
  normalImageLayout,
  type NormalImageVolume,
  parseE2imageHeader,
  writeNormalImage,
} from "../../lib/e2image/mod.ts";
import { needs, run, tempDir } from "../_helpers.ts";
import { extFixture } from "../ext/_fixtures.ts";

Deno.test("normalImageLayout() gives e2image's worked sizes", () => {
  assertEquals(
    normalImageLayout({
      blockSize: 1024,
      descBlocks: 1,
      groupCount: 4,
      inodeBlocksPerGroup: 512,
      clustersPerGroup: 8192,
      inodesPerGroup: 2048,
    }),
    {
      offsetSuper: 1024,
      offsetInode: 3072,
      offsetBlockmap: 2100224,
      offsetInodemap: 2104320,
      size: 2105344,
    },
  );
  const l = normalImageLayout({
    blockSize: 4096,
    descBlocks: 1,
    groupCount: 1,
    inodeBlocksPerGroup: 1024,
    clustersPerGroup: 32768,
    inodesPerGroup: 16384,
  });
  assertEquals([l.offsetInode, l.offsetBlockmap, l.offsetInodemap, l.size], [
    12288,
    4206592,
    4210688,
    4214784,
  ]);
});

function volumeOf(name: string): ExtVolume {
  return ExtVolume.open(new MemorySource(fs.readFileSync(extFixture(name))));
}

Deno.test(
  "writeNormalImage() streams the same bytes it writes to a file, holes aside",
  needs("mkfs.ext4", "debugfs"),
  () => {
    for (const name of ["ext4-1k", "ext4-bigalloc"]) {
      const v = volumeOf(name);
      const file = new MemorySink();
      const stream = new MemorySink({ kind: "stream" });
      const host = { hostname: "h", deviceName: "dev", time: 7 };
      const l1 = writeNormalImage(v, file, { host });
      const l2 = writeNormalImage(v, stream, { host, bufferSize: 4096 });
      assertEquals(l1, l2);
      assertEquals(file.size, l1.size);
      assertEquals(Buffer.from(stream.bytes()).equals(Buffer.from(file.bytes())), true, name);
      const h = parseE2imageHeader(file.bytes());
      assertEquals([h.fsHostname, h.fsDeviceName, h.imageTime, h.offsetInode], [
        "h",
        "dev",
        7,
        l1.offsetInode,
      ]);
      // The header is the file's last write: an interrupted run has no magic number.
      assertEquals(file.writes.at(-1), [0, v.blockSize]);
    }
  },
);

Deno.test(
  "writeNormalImage() -n leaves the header block zero and reports two header writes",
  needs("mkfs.ext4", "debugfs"),
  () => {
    const v = volumeOf("ext4-1k");
    const sink = new MemorySink();
    let n = 0;
    writeNormalImage(v, sink, { noHeader: true, onSkippedHeaderWrite: () => n++ });
    assertEquals(n, 2);
    assertEquals(sink.bytes().subarray(0, 1024).every((b) => b === 0), true);
  },
);

Deno.test("writeNormalImage() refuses a missing or out-of-range inode table before writing", () => {
  const base: NormalImageVolume = {
    source: new MemorySource(new Uint8Array(8192)),
    blockSize: 1024,
    blocksCount: 8,
    firstDataBlock: 1,
    groupCount: 1,
    inodeBlocksPerGroup: 2,
    groups: [{ inodeTable: 0 }],
    superblockBytes: () => new Uint8Array(1024),
    descriptorBytes: () => new Uint8Array(1024),
    blockBitmap: () => new Uint8Array(1),
    inodeBitmap: () => new Uint8Array(1),
  };
  const sink = new MemorySink();
  throws(
    () => writeNormalImage(base, sink),
    (e: unknown) =>
      e instanceof CorruptImageError &&
      e.details.compat === "A block group is missing an inode table",
  );
  throws(
    () => writeNormalImage({ ...base, groups: [{ inodeTable: 7 }] }, sink),
    (e: unknown) =>
      e instanceof CorruptImageError &&
      e.details.compat === "Corrupt group descriptor: bad block for inode table",
  );
  assertEquals(sink.writes.length, 0);
});

Deno.test("installNormalImage() rejects a file that is not a normal image, writing nothing", () => {
  const dev = new MemorySink({ kind: "device", capacity: 1 << 16 });
  throws(
    () => installNormalImage(new MemorySource(new Uint8Array(4096)), dev, { time: 0 }),
    (e: unknown) =>
      e instanceof CorruptImageError &&
      e.details.compat === "Wrong magic number for Ext2 Image Header",
  );
  throws(
    () => installNormalImage(new MemorySource(new Uint8Array(100)), dev, { time: 0 }),
    CorruptImageError,
  );
  assertEquals(dev.writes.length, 0);
});

Deno.test(
  "installNormalImage() restores inode tables and bitmaps of a damaged copy",
  needs("mkfs.ext4", "debugfs", "e2fsck"),
  () => {
    using tmp = tempDir("h2-inst-");
    const name = "ext4-1k";
    const orig = fs.readFileSync(extFixture(name));
    const v = ExtVolume.open(new MemorySource(orig));
    const img = new MemorySink();
    writeNormalImage(v, img);
    const damaged = orig.slice();
    const g0 = v.groups[0]!;
    damaged.fill(0, g0.inodeTable * 1024, (g0.inodeTable + 4) * 1024);
    damaged.fill(0, g0.blockBitmap * 1024, (g0.blockBitmap + 1) * 1024);
    const dev = new MemorySink({ kind: "device", capacity: damaged.length });
    dev.writeAt(0, damaged);
    const res = installNormalImage(new MemorySource(img.bytes()), dev, { time: 1700000000 });
    assertEquals(res.bytesWritten > 0, true);
    const path = `${tmp.path}/fixed.img`;
    fs.writeFileSync(path, dev.bytes());
    assertEquals(run("e2fsck", ["-fn", path]).code, 0);
  },
);
