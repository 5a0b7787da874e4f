/** Directory, xattr-block and journal-superblock codecs against debugfs and dumpe2fs. */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { CorruptImageError } from "../../lib/errors.ts";
import {
  ExtVolume,
  iterExtDirEntries,
  iterExtXattrEntries,
  parseExtXattrBlockHeader,
  parseJournalSuperblock,
  walkInodeBlocks,
} from "../../lib/ext/mod.ts";
import { MemorySource } from "../../lib/io/mod.ts";
import { needs, run } from "../_helpers.ts";
import { extFixture } from "./_fixtures.ts";

const dec = new TextDecoder();

function open(name: string): ExtVolume {
  return ExtVolume.open(new MemorySource(Deno.readFileSync(extFixture(name))));
}

function firstBlock(v: ExtVolume, ino: number): number {
  let first = -1;
  walkInodeBlocks(v.readInode(ino), v.walkContext(), (s, _n, k) => {
    if (k === 0 && first < 0) first = s;
  });
  return first;
}

Deno.test({
  name: "iterExtDirEntries() lists the root directory as debugfs ls does",
  ...needs("debugfs", "mkfs.ext4"),
  fn() {
    for (const name of ["ext4-default", "ext2-1k", "ext4-64k"]) {
      const v = open(name);
      const blk = firstBlock(v, 2);
      const buf = new Uint8Array(v.blockSize);
      assert(v.readBlock(blk, buf));
      const mine = [...iterExtDirEntries(buf, blk * v.blockSize)]
        .filter((e) => e.inode !== 0)
        .map((e) => `${e.inode} ${dec.decode(e.name)}`);
      const theirs = run("debugfs", ["-R", "ls -l /", extFixture(name)]).out.split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 8)
        .map((f) => `${f[0]} ${f[f.length - 1]}`);
      assertEquals(mine, theirs, name);
    }
  },
});

Deno.test({
  name: "iterExtDirEntries() refuses a record running past the block, with its offset",
  permissions: "none",
  fn() {
    const b = new Uint8Array(1024);
    b[0] = 2;
    b[4] = 12;
    b[6] = 1;
    b[8] = 0x2e;
    b[12 + 4] = 0xf8; // rec_len 1016 from offset 12: 4 bytes too long
    b[12 + 5] = 0x03;
    throws(
      () => [...iterExtDirEntries(b, 0x4000)],
      (e: unknown) => e instanceof CorruptImageError && e.details.offset === 0x4000 + 12 + 4,
    );
  },
});

Deno.test({
  name: "xattr block codec reads the block debugfs ea_set wrote",
  ...needs("debugfs", "mkfs.ext4"),
  fn() {
    const v = open("ext4-default");
    const stat = run("debugfs", ["-R", "stat /hello.txt", extFixture("ext4-default")]).out;
    const m = stat.match(/File ACL: (\d+)/);
    assert(m);
    const ino = Number(
      run("debugfs", ["-R", "stat /hello.txt", extFixture("ext4-default")]).out
        .match(/Inode: (\d+)/)![1],
    );
    assertEquals(v.readInode(ino).fileAcl, Number(m[1]));
    const buf = new Uint8Array(v.blockSize);
    assert(v.readBlock(Number(m[1]), buf));
    const h = parseExtXattrBlockHeader(buf);
    assertEquals(h.refcount, 1);
    const entries = [...iterExtXattrEntries(buf)];
    assertEquals(entries.map((e) => [e.nameIndex, dec.decode(e.name), e.valueSize]), [
      [1, "big", 700],
    ]);
    const value = buf.subarray(entries[0]!.valueOffset, entries[0]!.valueOffset + 700);
    assert(value.every((c) => c === 0x76)); // "v" * 700
    buf[3] = 0;
    throws(
      () => parseExtXattrBlockHeader(buf, 4096),
      (e: unknown) => e instanceof CorruptImageError && e.details.offset === 4096,
    );
  },
});

Deno.test({
  name: "parseJournalSuperblock() agrees with dumpe2fs",
  ...needs("dumpe2fs", "mkfs.ext4"),
  fn() {
    for (const name of ["ext4-default", "ext3-htree"]) {
      const v = open(name);
      const blk = firstBlock(v, v.superblock.journalInum);
      const buf = new Uint8Array(v.blockSize);
      assert(v.readBlock(blk, buf));
      const j = parseJournalSuperblock(buf);
      const out = run("dumpe2fs", [extFixture(name)]).out;
      const field = (label: string) => out.match(new RegExp(`^${label}:\\s+(.*)$`, "m"))![1]!;
      assertEquals(j.firstSequence, Number(field("Journal sequence")));
      assertEquals(j.start, Number(field("Journal start")));
      assertEquals(j.maxLen, Number(field("Total journal blocks")));
      assertEquals(j.maxLen * j.blockSize, parseSize(field("Total journal size")));
      buf[3] = 0;
      throws(() => parseJournalSuperblock(buf), CorruptImageError);
    }
  },
});

function parseSize(s: string): number {
  const m = s.toUpperCase().match(/^(\d+)([KMG])$/);
  if (!m) return Number(s);
  return Number(m[1]) * { K: 1024, M: 1 << 20, G: 1 << 30 }[m[2] as "K" | "M" | "G"];
}
