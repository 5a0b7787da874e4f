/**
 * The checksums and hashes the ext scrubber recomputes reproduce what mkfs.ext4 and debugfs
 * stored (golden values read from a real image): superblock, inode, directory leaf, xattr
 * entry/block hash and block checksum, jbd2 superblock. Plus the shared name generator.
 */
import assert from "node:assert/strict";
import { mustRun, needs, tempDir } from "../_helpers.ts";
import { openSink, openSource } from "../../lib/io/mod.ts";
import { u16, u32, u32be } from "../../lib/_internal/bytes.ts";
import { ExtVolume } from "../../lib/ext/volume.ts";
import { walkInodeBlocks } from "../../lib/ext/block_map.ts";
import {
  hasDirentTail,
  inodeChecksum,
  setDirBlockChecksum,
  setJournalSuperblockChecksum,
  setMmpChecksum,
  setSuperblockChecksum,
  setXattrBlockChecksum,
  superblockChecksumOk,
  xattrBlockHash,
  xattrEntryHash,
} from "../../lib/ext/_privacy_csum.ts";
import {
  FindingCollector,
  looksScrambled,
  printableSample,
  scrambledName,
} from "../../lib/_internal/privacy.ts";
import { buildExt, buildExtUnmounted, e2fsck, EXT_RECIPES, SECRET } from "./_fixtures.ts";
import { auditExt } from "../../lib/ext/audit.ts";
import { scrubExt } from "../../lib/ext/scrub.ts";

/** Recomputes the jbd2 superblock checksum; returns the stored value. */
function checkJournalSuperblock(vol: ExtVolume): number {
  const j = vol.readInode(vol.superblock.journalInum);
  let first = -1;
  walkInodeBlocks(j, vol.walkContext(), (s, _n, bc) => {
    if (bc === 0) first = s;
  });
  const jb = new Uint8Array(vol.blockSize);
  vol.readBlock(first, jb);
  assert.equal(u32be(jb, 0), 0xc03b3998);
  const stored = u32be(jb, 0xfc);
  setJournalSuperblockChecksum(jb);
  assert.equal(u32be(jb, 0xfc), stored);
  return stored;
}

/** Checks every xattr block's entry hashes, block hash and checksum; returns the count. */
function checkXattrBlocks(vol: ExtVolume, blockHash: boolean): number {
  let n = 0;
  for (let ino = 12; ino <= Math.min(vol.superblock.inodesCount, 400); ino++) {
    const inode = vol.readInode(ino);
    if (inode.linksCount === 0 || inode.fileAcl === 0) continue;
    const b = new Uint8Array(vol.blockSize);
    vol.readBlock(inode.fileAcl, b);
    assert.equal(u32(b, 0), 0xea020000);
    const hashes: number[] = [];
    for (let p = 32; u32(b, p) !== 0; p += (b[p]! + 16 + 3) & ~3) {
      const name = b.subarray(p + 16, p + 16 + b[p]!);
      const value = b.subarray(u16(b, p + 2), u16(b, p + 2) + u32(b, p + 8));
      assert.equal(xattrEntryHash(name, value), u32(b, p + 12));
      hashes.push(u32(b, p + 12));
    }
    assert.equal(xattrBlockHash(hashes), blockHash ? u32(b, 12) : xattrBlockHash(hashes));
    if (blockHash) assert.notEqual(u32(b, 12), 0);
    const stored = u32(b, 0x10);
    setXattrBlockChecksum(b, inode.fileAcl, vol.csumSeed);
    assert.equal(u32(b, 0x10), stored);
    n++;
  }
  return n;
}

Deno.test("scrambledName() sorts like its id within one length", { permissions: "none" }, () => {
  const names = Array.from({ length: 800 }, (_, i) => scrambledName(i, 3));
  assert.deepEqual([...names].sort(), names);
  assert.equal(new Set(names).size, 800);
  assert.equal(scrambledName(0, 1), "A");
  assert.equal(scrambledName(25, 1), "Z");
  assert.ok(names.every((n) => looksScrambled(n)));
  assert.ok(!looksScrambled("README.txt") && !looksScrambled(""));
});

Deno.test("FindingCollector keeps five distinct printable samples", { permissions: "none" }, () => {
  const c = new FindingCollector();
  for (let i = 0; i < 10; i++) c.add("names", 1, `n${i % 7}\n`);
  c.add("uuid", 1, "x", "info");
  const f = c.findings();
  assert.deepEqual(f.map((x) => x.kind), ["names", "uuid"]);
  assert.equal(f[0]!.count, 10);
  assert.deepEqual(f[0]!.samples, ["n0\\x0a", "n1\\x0a", "n2\\x0a", "n3\\x0a", "n4\\x0a"]);
  assert.equal(c.leaks(), 1);
  assert.equal(printableSample("a".repeat(100)).length, 65);
});

Deno.test({
  name: "ext checksum helpers reproduce the values mkfs.ext4 and debugfs stored",
  ...needs("mkfs.ext4", "debugfs"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = buildExtUnmounted(tmp.path, "csum", ["-b", "1024"]);
    const src = openSource(img);
    try {
      const vol = ExtVolume.open(src);
      const seed = vol.csumSeed;
      const sb = vol.superblockBytes();
      assert.ok(superblockChecksumOk(sb));
      const sb2 = sb.slice();
      sb2.fill(0, 0x3fc);
      setSuperblockChecksum(sb2);
      assert.equal(u32(sb2, 0x3fc), u32(sb, 0x3fc));

      // Every used inode's stored checksum.
      let checked = 0;
      for (let ino = 1; ino <= 140; ino++) {
        const raw = vol.readInodeBytes(ino);
        if (u16(raw, 0x1a) === 0) continue;
        const c = inodeChecksum(raw, ino, seed);
        assert.equal(c & 0xffff, u16(raw, 0x7c), `inode ${ino} lo`);
        assert.equal(c >>> 16, u16(raw, 0x82), `inode ${ino} hi`);
        checked++;
      }
      assert.ok(checked > 100);

      // The root directory's leaf blocks.
      const root = vol.readInode(2);
      const rootRaw = vol.readInodeBytes(2);
      const blocks: number[] = [];
      walkInodeBlocks(root, vol.walkContext(), (s, n, bc) => {
        if (bc >= 0) { for (let i = 0; i < n; i++) blocks.push(s + i); }
      });
      for (const b of blocks) {
        const buf = new Uint8Array(vol.blockSize);
        vol.readBlock(b, buf);
        assert.ok(hasDirentTail(buf));
        const stored = u32(buf, vol.blockSize - 4);
        setDirBlockChecksum(buf, 2, u32(rootRaw, 0x64), seed);
        assert.equal(u32(buf, vol.blockSize - 4), stored);
      }

      // The xattr block debugfs wrote for the large value (debugfs leaves h_hash 0).
      assert.equal(checkXattrBlocks(vol, false), 1);
    } finally {
      src.close();
    }
  },
});

Deno.test({
  name: "xattr block hashes match what the kernel stored",
  ...needs("root", "mkfs.ext4", "python3"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = buildExt(tmp.path, EXT_RECIPES[2]!, "k");
    const src = openSource(img);
    try {
      const vol = ExtVolume.open(src);
      assert.equal(checkXattrBlocks(vol, true), 1);
      // The kernel turned on journal checksums (v3) when it mounted the fs.
      assert.notEqual(checkJournalSuperblock(vol), 0);
    } finally {
      src.close();
    }
  },
});

Deno.test({
  name: "MMP: the node name and device path are found and wiped, the checksum redone",
  ...needs("mkfs.ext4", "e2fsck"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = `${tmp.path}/${SECRET}.img`;
    mustRun("truncate", ["-s", "8M", img]);
    // mkfs records this host and the device path as given (here the secret) in the MMP block.
    mustRun("mkfs.ext4", ["-q", "-F", "-O", "mmp", `${SECRET}.img`], { cwd: tmp.path });
    const readMmp = () => {
      const src = openSource(img);
      try {
        const vol = ExtVolume.open(src);
        const b = new Uint8Array(vol.blockSize);
        vol.readBlock(vol.superblock.mmpBlock, b);
        return { b, seed: vol.csumSeed };
      } finally {
        src.close();
      }
    };
    const { b, seed } = readMmp();
    assert.equal(u32(b, 0), 0x004d4d50);
    const stored = u32(b, 0x3fc);
    setMmpChecksum(b, seed);
    assert.equal(u32(b, 0x3fc), stored);
    const src = openSource(img);
    const found = auditExt(src).findings.find((f) => f.kind === "last-mounted")!;
    src.close();
    assert.ok(found.samples.some((s) => s.startsWith("MMP ") && s.includes(SECRET)));
    const sink = openSink(img, { mode: "existing" });
    scrubExt(sink);
    sink.close();
    const after = readMmp();
    assert.ok(after.b.subarray(0x10, 0x70).every((x) => x === 0));
    const c = u32(after.b, 0x3fc);
    setMmpChecksum(after.b, after.seed);
    assert.equal(u32(after.b, 0x3fc), c);
    assert.equal(e2fsck(img).code, 0);
  },
});
