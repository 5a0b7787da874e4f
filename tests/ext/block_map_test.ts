import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { LimitExceededError } from "../../lib/errors.ts";
import { type BlockWalkContext, parseExtInode, walkInodeBlocks } from "../../lib/ext/mod.ts";

const BS = 1024;

function ctx(blocks: Map<number, Uint8Array>, blocksCount = 1 << 20): BlockWalkContext {
  return {
    blockSize: BS,
    blocksCount,
    firstDataBlock: 1,
    hurd: false,
    readBlock(b, buf) {
      const d = blocks.get(b);
      if (b >= blocksCount) return false;
      buf.fill(0);
      if (d) buf.set(d);
      return true;
    },
  };
}

function header(b: Uint8Array, o: number, entries: number, max: number, depth: number) {
  const v = new DataView(b.buffer, b.byteOffset);
  v.setUint16(o, 0xf30a, true);
  v.setUint16(o + 2, entries, true);
  v.setUint16(o + 4, max, true);
  v.setUint16(o + 6, depth, true);
}

function index(b: Uint8Array, i: number, lblk: number, leaf: number) {
  const v = new DataView(b.buffer, b.byteOffset);
  v.setUint32(12 + 12 * i, lblk, true);
  v.setUint32(12 + 12 * i + 4, leaf, true);
}

function leaf(b: Uint8Array, i: number, lblk: number, len: number, start: number) {
  const v = new DataView(b.buffer, b.byteOffset);
  v.setUint32(12 + 12 * i, lblk, true);
  v.setUint16(12 + 12 * i + 4, len, true);
  v.setUint32(12 + 12 * i + 8, start, true);
}

function extentInode(root: (iblock: Uint8Array) => void) {
  const raw = new Uint8Array(128);
  new DataView(raw.buffer).setUint16(0, 0x81a4, true);
  new DataView(raw.buffer).setUint32(0x20, 0x80000, true);
  root(raw.subarray(0x28, 0x64));
  return parseExtInode(raw, 0, 128, false);
}

function nodeBlock(entries: number, depth: number, fill: (b: Uint8Array) => void) {
  const b = new Uint8Array(BS);
  header(b, 0, entries, (BS - 12) / 12, depth);
  fill(b);
  return b;
}

function walk(inode: ReturnType<typeof extentInode>, c: BlockWalkContext) {
  const seen: [number, number, number][] = [];
  const err = walkInodeBlocks(inode, c, (s, n, k) => seen.push([s, n, k]));
  return { seen, err };
}

Deno.test({
  name: "walkInodeBlocks() reports index blocks once, then leaf extents",
  permissions: "none",
  fn() {
    const blocks = new Map([[
      100,
      nodeBlock(2, 0, (b) => {
        leaf(b, 0, 0, 3, 500);
        leaf(b, 1, 10, 32768 + 2, 600); // uninitialized extent of 2 blocks
      }),
    ]]);
    const inode = extentInode((r) => {
      header(r, 0, 1, 4, 1);
      index(r, 0, 0, 100);
    });
    const { seen, err } = walk(inode, ctx(blocks));
    assertEquals(err, null);
    assertEquals(seen, [[100, 1, -1], [500, 3, 0], [600, 2, 10]]);
  },
});

Deno.test({
  name: "walkInodeBlocks() finds a cycle in an extent tree",
  permissions: "none",
  fn() {
    const blocks = new Map([
      [100, nodeBlock(1, 1, (b) => index(b, 0, 0, 101))],
      [101, nodeBlock(1, 1, (b) => index(b, 0, 0, 100))],
    ]);
    const inode = extentInode((r) => {
      header(r, 0, 1, 4, 3);
      index(r, 0, 0, 100);
    });
    const { err } = walk(inode, ctx(blocks));
    assertEquals(err?.compat, "Found cyclic loop in extent tree");
  },
});

Deno.test({
  name: "walkInodeBlocks() follows a corrupt root depth like libext2fs, but at most 32 levels",
  permissions: "none",
  fn() {
    // A root claiming depth 60000 whose child is garbage: the child is reported, then refused.
    const inode = extentInode((r) => {
      header(r, 0, 1, 4, 60000);
      index(r, 0, 0, 100);
    });
    const r1 = walk(inode, ctx(new Map()));
    assertEquals(r1.err?.compat, "Corrupt extent header");
    assertEquals(r1.seen, [[100, 1, -1]]);
    // A 40-level chain of valid index blocks: the walk stops after 32 levels.
    const blocks = new Map<number, Uint8Array>();
    for (let i = 0; i < 40; i++) {
      blocks.set(
        100 + i,
        nodeBlock(1, 1, (b) => index(b, 0, 0, 101 + i)),
      );
    }
    const deep = extentInode((r) => {
      header(r, 0, 1, 4, 40);
      index(r, 0, 0, 100);
    });
    const r2 = walk(deep, ctx(blocks));
    assertEquals(r2.err?.compat, "Corrupt extent header");
    assertEquals(r2.seen.length, 33);
  },
});

Deno.test({
  name: "walkInodeBlocks() bounds a DAG-shaped tree that would take 84^4 visits",
  permissions: "none",
  fn() {
    // Every index entry of every level points at the same child: no cycle, exponential work.
    const blocks = new Map<number, Uint8Array>();
    for (let d = 0; d < 4; d++) {
      blocks.set(
        100 + d,
        nodeBlock(84, 4 - d, (b) => {
          for (let i = 0; i < 84; i++) index(b, i, i, 101 + d);
        }),
      );
    }
    blocks.set(104, nodeBlock(1, 0, (b) => leaf(b, 0, 0, 1, 900)));
    const inode = extentInode((r) => {
      header(r, 0, 1, 4, 5);
      index(r, 0, 0, 100);
    });
    for (const blocksCount of [5000, 1 << 30]) {
      const t0 = performance.now();
      const { err } = walk(inode, ctx(blocks, blocksCount));
      assertEquals(err?.compat, "Found cyclic loop in extent tree");
      assert(performance.now() - t0 < 5000, `${blocksCount}: ${performance.now() - t0} ms`);
    }
  },
});

Deno.test({
  name: "walkInodeBlocks() ignores a corrupt extent root like libext2fs",
  permissions: "none",
  fn() {
    const inode = extentInode((r) => header(r, 0, 9, 4, 0)); // entries > max
    assertEquals(walk(inode, ctx(new Map())), { seen: [], err: null });
  },
});

Deno.test({
  name: "walkInodeBlocks() walks IND/DIND/TIND maps and merges runs",
  permissions: "none",
  fn() {
    const ind = new Uint8Array(BS), dind = new Uint8Array(BS), ind2 = new Uint8Array(BS);
    const v = (b: Uint8Array) => new DataView(b.buffer);
    for (let i = 0; i < 256; i++) v(ind).setUint32(4 * i, 1000 + i, true);
    v(dind).setUint32(0, 30, true);
    v(ind2).setUint32(8, 2000, true);
    const raw = new Uint8Array(128);
    const rv = new DataView(raw.buffer);
    rv.setUint16(0, 0x81a4, true);
    for (let i = 0; i < 12; i++) rv.setUint32(0x28 + 4 * i, 50 + i, true);
    rv.setUint32(0x28 + 48, 20, true);
    rv.setUint32(0x28 + 52, 21, true);
    const inode = parseExtInode(raw, 0, 128, false);
    const blocks = new Map([[20, ind], [21, dind], [30, ind2]]);
    const seen: [number, number, number][] = [];
    assertEquals(walkInodeBlocks(inode, ctx(blocks), (s, n, k) => seen.push([s, n, k])), null);
    const merged: [number, number, number][] = [];
    for (let i = 0; i < 12; i++) merged.push([50 + i, 1, i]);
    assertEquals(seen, [
      ...merged,
      [20, 1, -1],
      [1000, 256, 12],
      [21, 1, -2],
      [30, 1, -1],
      [2000, 1, 12 + 256 + 2],
    ]);
  },
});

Deno.test({
  name: "walkInodeBlocks() stops a TIND map whose entries all share one DIND and IND",
  permissions: "none",
  fn() {
    // 4 KiB blocks: 1024 x 1024 IND reads of 1024 entries each without a cap.
    const bs = 4096;
    const tind = new Uint8Array(bs), dind = new Uint8Array(bs), ind = new Uint8Array(bs);
    for (let i = 0; i < bs / 4; i++) {
      new DataView(tind.buffer).setUint32(4 * i, 21, true);
      new DataView(dind.buffer).setUint32(4 * i, 22, true);
      new DataView(ind.buffer).setUint32(4 * i, 500 + i, true);
    }
    const raw = new Uint8Array(128);
    new DataView(raw.buffer).setUint16(0, 0x81a4, true);
    new DataView(raw.buffer).setUint32(0x28 + 56, 20, true);
    const inode = parseExtInode(raw, 0, 128, false);
    const blocks = new Map([[20, tind], [21, dind], [22, ind]]);
    const c: BlockWalkContext = {
      blockSize: bs,
      blocksCount: 1 << 30,
      firstDataBlock: 0,
      hurd: false,
      readBlock(b, buf) {
        buf.set(blocks.get(b) ?? new Uint8Array(bs));
        return true;
      },
    };
    const t0 = performance.now();
    throws(() => walkInodeBlocks(inode, c, () => {}), LimitExceededError);
    assert(performance.now() - t0 < 5000);
  },
});
