import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { CorruptImageError, UnsupportedFeatureError } from "../../lib/errors.ts";
import { parseExtSuperblock } from "../../lib/ext/mod.ts";
import { needs, run, tempDir } from "../_helpers.ts";
import { extFixture } from "./_fixtures.ts";

function superblockOf(name: string): Uint8Array {
  const img = Deno.readFileSync(extFixture(name));
  return img.slice(1024, 2048);
}

Deno.test({
  name: "parseExtSuperblock() matches dumpe2fs -h on the fixtures",
  ...needs("dumpe2fs", "mkfs.ext4"),
  fn() {
    for (const name of ["ext4-default", "ext2-1k", "ext4-bigalloc", "ext4-64k", "ext4-features"]) {
      const sb = parseExtSuperblock(superblockOf(name));
      const out = run("dumpe2fs", ["-h", extFixture(name)]).out;
      const field = (label: string): string => {
        const m = out.match(new RegExp(`^${label}:\\s+(.*)$`, "m"));
        assert(m, `${name}: no ${label}`);
        return m[1]!.trim();
      };
      assertEquals(sb.inodesCount, Number(field("Inode count")));
      assertEquals(sb.blocksCount, Number(field("Block count")));
      assertEquals(sb.firstDataBlock, Number(field("First block")));
      assertEquals(1024 << sb.logBlockSize, Number(field("Block size")));
      assertEquals(sb.blocksPerGroup, Number(field("Blocks per group")));
      assertEquals(sb.inodesPerGroup, Number(field("Inodes per group")));
      assertEquals(sb.inodeSize, Number(field("Inode size")));
      assertEquals(sb.volumeName, field("Filesystem volume name"));
      const uuid = [...sb.uuid].map((b) => b.toString(16).padStart(2, "0")).join("");
      assertEquals(uuid, field("Filesystem UUID").replaceAll("-", ""));
      if (out.includes("Journal inode:")) {
        assertEquals(sb.journalInum, Number(field("Journal inode")));
      }
      if (out.includes("Reserved GDT blocks:")) {
        assertEquals(sb.reservedGdtBlocks, Number(field("Reserved GDT blocks")));
      }
      if (out.includes("MMP block number:")) {
        assertEquals(sb.mmpBlock, Number(field("MMP block number")));
      }
      if (out.includes("Orphan file inode:")) {
        assertEquals(sb.orphanFileInum, Number(field("Orphan file inode")));
      }
    }
  },
});

function put32(b: Uint8Array, o: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint32(o, v >>> 0, true);
}
function put16(b: Uint8Array, o: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint16(o, v, true);
}

const MUTATIONS: [string, (b: Uint8Array) => void, string, string, number][] = [
  ["bad magic", (b) => put16(b, 0x38, 0x1234), "Bad magic number in super-block", "s_magic", 0x38],
  ["revision 2", (b) => put32(b, 0x4c, 2), "Filesystem revision too high", "s_rev_level", 0x4c],
  [
    "log block size 7",
    (b) => put32(b, 0x18, 7),
    "The ext2 superblock is corrupt",
    "s_log_block_size",
    0x18,
  ],
  [
    "log cluster size 20",
    (b) => put32(b, 0x1c, 20),
    "The ext2 superblock is corrupt",
    "s_log_cluster_size",
    0x1c,
  ],
  [
    "groups per flex 32",
    (b) => (b[0x174] = 32),
    "The ext2 superblock is corrupt",
    "s_log_groups_per_flex",
    0x174,
  ],
  [
    "cluster != block without bigalloc",
    (b) => put32(b, 0x1c, 3),
    "The ext2 superblock is corrupt",
    "s_log_cluster_size",
    0x1c,
  ],
  [
    "inode size 100",
    (b) => put16(b, 0x58, 100),
    "The ext2 superblock is corrupt",
    "s_inode_size",
    0x58,
  ],
  [
    "inode size 384",
    (b) => put16(b, 0x58, 384),
    "The ext2 superblock is corrupt",
    "s_inode_size",
    0x58,
  ],
  [
    "desc size 48",
    (b) => put16(b, 0xfe, 48),
    "Block group descriptor size incorrect",
    "s_desc_size",
    0xfe,
  ],
  [
    "blocks per group 7",
    (b) => {
      put32(b, 0x20, 7);
      put32(b, 0x24, 7);
    },
    "The ext2 superblock is corrupt",
    "s_blocks_per_group",
    0x20,
  ],
  [
    "clusters per group mismatch",
    (b) => put32(b, 0x24, 1000),
    "The ext2 superblock is corrupt",
    "s_blocks_per_group",
    0x20,
  ],
  [
    "inodes per group 0",
    (b) => put32(b, 0x28, 0),
    "The ext2 superblock is corrupt",
    "s_inodes_per_group",
    0x28,
  ],
  [
    "inodes count wrong",
    (b) => put32(b, 0, 12345),
    "The ext2 superblock is corrupt",
    "s_inodes_count",
    0,
  ],
  [
    "first data block past the end",
    (b) => put32(b, 0x14, 0xffffff),
    "The ext2 superblock is corrupt",
    "s_first_data_block",
    0x14,
  ],
  [
    "huge inodes per group",
    (b) => put32(b, 0x28, 0x10000000),
    "The ext2 superblock is corrupt",
    "s_inodes_per_group",
    0x28,
  ],
];

for (const [what, mutate, compat, field, off] of MUTATIONS) {
  Deno.test({
    name: `parseExtSuperblock() refuses ${what} with libext2fs's message`,
    ...needs("mkfs.ext4", "e2image"),
    fn() {
      const b = superblockOf("ext4-default");
      mutate(b);
      // The real tool says the same.
      using tmp = tempDir("fsimage-ext-sb-");
      const img = Deno.readFileSync(extFixture("ext4-default"));
      img.set(b, 1024);
      Deno.writeFileSync(`${tmp.path}/m.img`, img);
      const r = run("e2image", ["-r", `${tmp.path}/m.img`, `${tmp.path}/out`]);
      assertEquals(r.code, 1);
      assert(r.err.includes(`${compat} while trying to open`), r.err);
      try {
        parseExtSuperblock(b);
        assert(false, "no error");
      } catch (e) {
        assert(e instanceof CorruptImageError, String(e));
        assertEquals(e.details.compat, compat);
        assertEquals(e.details.field, field);
        assertEquals(e.details.offset, 1024 + off);
        assert(e.message.includes(`0x${(1024 + off).toString(16)}`), e.message);
      }
    },
  });
}

Deno.test({
  name: "parseExtSuperblock() refuses unknown incompat features and journal devices",
  ...needs("mkfs.ext4"),
  fn() {
    const b = superblockOf("ext4-default");
    put32(b, 0x60, (b[0x60]! | (b[0x61]! << 8) | (b[0x62]! << 16)) | 0x1000000);
    try {
      parseExtSuperblock(b);
      assert(false);
    } catch (e) {
      assert(e instanceof UnsupportedFeatureError);
      assertEquals(e.compat, "Filesystem has unsupported feature(s)");
    }
  },
});

Deno.test({
  name: "parseExtSuperblock() rejects garbage quickly with domain errors only",
  permissions: "none",
  fn() {
    let x = 12345;
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(1024);
      for (let j = 0; j < b.length; j++) {
        x = (x * 1103515245 + 12345) >>> 0;
        b[j] = x >>> 24;
      }
      put16(b, 0x38, 0xef53);
      put32(b, 0x4c, 1);
      try {
        parseExtSuperblock(b);
      } catch (e) {
        assert(e instanceof CorruptImageError || e instanceof UnsupportedFeatureError, String(e));
      }
    }
  },
});
