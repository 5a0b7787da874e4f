/**
 * ExtVolume against the real tools: descriptors and checksums, inodes, the in-memory bitmaps
 * (compared with the bitmaps e2image writes into a normal image), backup-superblock opens.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { CorruptImageError, LimitExceededError } from "../../lib/errors.ts";
import type { Source } from "../../lib/io/types.ts";
import { ExtVolume, scrambleDirBlock, ScrambleState } from "../../lib/ext/mod.ts";
import { copyExtents, MemorySource, openSink, openSource } from "../../lib/io/mod.ts";
import { blocksToBytes } from "../../lib/_internal/extents.ts";
import { needs, run, tempDir } from "../_helpers.ts";
import { extFixture, extFixtureNames } from "./_fixtures.ts";

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function withVolume<T>(img: string, f: (v: ExtVolume) => T, opts = {}): T {
  const src = openSource(img);
  try {
    return f(ExtVolume.open(src, opts));
  } finally {
    src.close();
  }
}

for (const name of extFixtureNames) {
  Deno.test({
    name: `ExtVolume bitmaps, descriptors and superblock equal e2image's normal image: ${name}`,
    ...needs("e2image", "mkfs.ext4"),
    fn() {
      using tmp = tempDir("fsimage-ext-vol-");
      const img = extFixture(name);
      const e2i = `${tmp.path}/n.e2i`;
      const r = run("e2image", [img, e2i]);
      assertEquals(r.code, 0, r.err);
      const image = Deno.readFileSync(e2i);
      withVolume(img, (v) => {
        const bs = v.blockSize;
        // superblock at block 1, descriptors from block 2 (meta_bg gathered contiguously)
        assertEquals(image.subarray(bs, bs + 1024), v.superblockBytes());
        assertEquals(
          image.subarray(2 * bs, (2 + v.descBlocks) * bs),
          v.descriptorBytes(),
        );
        for (const g of v.groups) assert(g.checksumValid, `${name}: descriptor checksum`);
        const offInodeMap = u32(image, 292), offBlockMap = u32(image, 296);
        const bb = v.clustersPerGroup / 8, ib = v.inodesPerGroup / 8;
        for (let g = 0; g < v.groupCount; g++) {
          assertEquals(
            v.blockBitmap(g),
            image.subarray(offBlockMap + g * bb, offBlockMap + (g + 1) * bb),
            `${name}: block bitmap of group ${g}`,
          );
          assertEquals(
            v.inodeBitmap(g),
            image.subarray(offInodeMap + g * ib, offInodeMap + (g + 1) * ib),
            `${name}: inode bitmap of group ${g}`,
          );
        }
        // The root inode as debugfs sees it.
        const root = v.readInode(2);
        assertEquals(root.mode & 0xf000, 0x4000);
        const stat = run("debugfs", ["-R", "stat <2>", img]).out;
        const links = stat.match(/Links: (\d+)/);
        assert(links);
        assertEquals(root.linksCount, Number(links[1]));
      });
    },
  });
}

const BACKUPS: [string, number, number][] = [
  ["ext4-4k-2groups", 32768, 4096],
  ["ext2-2groups", 8193, 1024],
  ["ext4-1k", 8193, 1024],
  ["ext4-uninit", 8193, 1024],
  ["ext4-metabg", 257, 1024],
  ["ext4-metabg", 769, 1024],
];

for (const [name, sb, bs] of BACKUPS) {
  Deno.test({
    name:
      `e2imageSelection() after a backup-superblock open equals e2image -b ${sb} -B ${bs}: ${name}`,
    ...needs("e2image", "mkfs.ext4"),
    fn() {
      using tmp = tempDir("fsimage-ext-b-");
      const img = extFixture(name);
      for (
        const [flag, mode] of [
          ["-r", {}],
          ["-ra", { allData: true }],
          ["-rs", { scramble: true }],
        ] as const
      ) {
        const want = `${tmp.path}/w${flag}`, got = `${tmp.path}/g${flag}`;
        const r = run("e2image", [flag, "-b", String(sb), "-B", String(bs), img, want]);
        assertEquals(r.code, 0, r.err);
        withVolume(img, (v) => {
          assertEquals(v.superblockBlock, sb);
          for (const g of v.groups) assertEquals(g.flags & 3, 0);
          const sel = v.e2imageSelection(mode);
          const scr = new Set<number>();
          for (const e of sel.scrambleBlocks) {
            for (let i = 0; i < e.count; i++) scr.add(e.start + i);
          }
          const st = new ScrambleState();
          const sink = openSink(got, { mode: "create" });
          copyExtents(v.source, sink, blocksToBytes(sel.blocks, bs), {
            blockSize: bs,
            size: v.blocksCount * bs,
            transform: (off, b) => {
              if (scr.has(off / bs)) scrambleDirBlock(b, off / bs, st, () => {});
            },
          });
          sink.close();
        }, { superblock: sb, blockSize: bs });
        assertEquals(run("cmp", [want, got]).code, 0, `${name} ${flag} -b ${sb}`);
      }
    },
  });
}

Deno.test({
  name: "ExtVolume.open() refuses what ext2fs_open2 refuses, with libext2fs's message",
  ...needs("mkfs.ext4"),
  fn() {
    const img = Deno.readFileSync(extFixture("ext4-1k"));
    const compat = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        if (e instanceof CorruptImageError) return e.details.compat;
        return (e as { compat?: string }).compat;
      }
      return "no error";
    };
    const open = (b: Uint8Array, o = {}) => () => ExtVolume.open(new MemorySource(b), o);
    assertEquals(
      compat(open(img, { superblock: 8193 })),
      "Invalid argument passed to ext2 library",
    );
    assertEquals(compat(open(img, { blockSize: 4096 })), "Filesystem has unexpected block size");
    assertEquals(compat(open(img, { blockSize: 0 })), "no error"); // -B 0 means not given
    assertEquals(
      compat(open(img, { superblock: 8193, blockSize: 4096 })),
      "Attempt to read block from filesystem resulted in short read",
    );
    assertEquals(
      compat(open(img.slice(0, 1500))),
      "Attempt to read block from filesystem resulted in short read",
    );
    const zero = new Uint8Array(8192);
    assertEquals(compat(open(zero)), "Bad magic number in super-block");
    const bad = img.slice();
    bad[1024 + 0x60] = bad[1024 + 0x60]! | 0x01; // s_feature_incompat |= COMPRESSION
    assertEquals(compat(open(bad)), "Filesystem has unsupported feature(s)");
    throws(open(new Uint8Array(0)), CorruptImageError);
  },
});

Deno.test({
  name: "group descriptor checksums (crc16 and crc32c) catch a one-byte change",
  ...needs("mkfs.ext4"),
  fn() {
    for (const name of ["ext4-uninit", "ext4-metabg", "ext4-default"]) {
      const img = Deno.readFileSync(extFixture(name));
      const v0 = ExtVolume.open(new MemorySource(img));
      assert(v0.hasGroupChecksums);
      const loc = v0.descriptorLocations[0]! * v0.blockSize;
      const bad = img.slice();
      bad[loc + v0.descSize + 0x0e] = bad[loc + v0.descSize + 0x0e]! ^ 1; // group 1 bg_free_inodes
      const v = ExtVolume.open(new MemorySource(bad));
      assertEquals(v.groups.map((g) => g.checksumValid), v0.groups.map((_, i) => i !== 1));
    }
  },
});

Deno.test({
  name: "a BLOCK_UNINIT group with a bad descriptor checksum has its bitmap read from disk",
  ...needs("mkfs.ext4", "e2image"),
  fn() {
    using tmp = tempDir("fsimage-ext-bbm-");
    const img = Deno.readFileSync(extFixture("ext4-metabg"));
    const v0 = ExtVolume.open(new MemorySource(img));
    const g = v0.groups.findIndex((d) => (d.flags & 2) !== 0);
    assert(g > 0);
    const loc = v0.descriptorLocations[Math.floor(g / v0.descPerBlock)]! * v0.blockSize +
      (g % v0.descPerBlock) * v0.descSize;
    img[loc + 0x1e] = img[loc + 0x1e]! ^ 0xff; // break the checksum
    Deno.writeFileSync(`${tmp.path}/c.img`, img);
    const r = run("e2image", [`${tmp.path}/c.img`, `${tmp.path}/c.e2i`]);
    assertEquals(r.code, 0, r.err);
    const image = Deno.readFileSync(`${tmp.path}/c.e2i`);
    const v = ExtVolume.open(new MemorySource(img));
    assert(!v.groups[g]!.checksumValid);
    const off = u32(image, 296), bb = v.clustersPerGroup / 8;
    for (let i = 0; i < v.groupCount; i++) {
      assertEquals(v.blockBitmap(i), image.subarray(off + i * bb, off + (i + 1) * bb));
    }
  },
});

Deno.test({
  name: "ExtVolume.open() refuses huge counts quickly, without allocating for them",
  permissions: "none",
  fn() {
    // A minimal valid-looking 1 KiB superblock with absurd geometry.
    const sb = new Uint8Array(1024);
    const v = new DataView(sb.buffer);
    v.setUint16(0x38, 0xef53, true);
    v.setUint32(0x4c, 1, true);
    v.setUint16(0x58, 128, true);
    v.setUint32(0x14, 1, true); // first data block
    v.setUint32(0x20, 8, true); // blocks per group
    v.setUint32(0x24, 8, true);
    v.setUint32(0x04, 0xffffffff, true); // blocks: 2^32 - 1 → 2^29 groups
    v.setUint32(0x28, 8, true); // inodes per group
    v.setUint32(0x00, ((2 ** 29) * 8) >>> 0, true); // wraps: mismatch
    const img = new Uint8Array(4096);
    img.set(sb, 1024);
    const t0 = performance.now();
    throws(
      () => ExtVolume.open(new MemorySource(img)),
      (e: unknown) =>
        e instanceof CorruptImageError && e.details.compat === "The ext2 superblock is corrupt",
    );
    // Consistent counts, but 2^29 descriptors (16 GiB) cannot come from a 4 KiB source.
    v.setUint32(0x28, 1, true);
    v.setUint32(0x00, 2 ** 29, true);
    img.set(sb, 1024);
    throws(
      () => ExtVolume.open(new MemorySource(img)),
      (e: unknown) =>
        e instanceof CorruptImageError &&
        e.details.compat === "Attempt to read block from filesystem resulted in short read",
    );
    assert(performance.now() - t0 < 1000);
  },
});

Deno.test({
  name: "ExtVolume.open() caps the descriptor table of a huge claimed group count",
  permissions: "none",
  fn() {
    const sb = new Uint8Array(1024);
    const v = new DataView(sb.buffer);
    v.setUint16(0x38, 0xef53, true);
    v.setUint32(0x4c, 1, true);
    v.setUint16(0x58, 128, true);
    v.setUint32(0x14, 1, true);
    v.setUint32(0x20, 8, true);
    v.setUint32(0x24, 8, true);
    v.setUint32(0x04, 2 ** 27 + 1, true); // 2^24 groups of 8 blocks
    v.setUint32(0x28, 1, true);
    v.setUint32(0x00, 2 ** 24, true);
    // A 1 TiB source of zeros around that superblock (nothing is allocated for it).
    const src: Source = {
      name: "huge",
      size: 2 ** 40,
      readAt(offset: number, buf: Uint8Array) {
        buf.fill(0);
        for (let i = 0; i < buf.length; i++) {
          const o = offset + i;
          if (o >= 1024 && o < 2048) buf[i] = sb[o - 1024]!;
        }
        return buf.length;
      },
      close() {},
    };
    throws(() => ExtVolume.open(src), LimitExceededError);
  },
});
