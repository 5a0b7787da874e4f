import assert from "node:assert/strict";
import {
  BlockSetBuilder,
  blocksToBytes,
  extentsLength,
  mergeBlockExtents,
  normalizeExtents,
  validateExtents,
} from "../../lib/_internal/extents.ts";

Deno.test("validateExtents() accepts sorted extents inside the limit", () => {
  validateExtents([], 0);
  validateExtents([{ offset: 0, length: 1 }, { offset: 1, length: 9 }], 10);
});

Deno.test("validateExtents() rejects unsorted, overlapping, empty and out-of-range extents", () => {
  const bad: Array<[Array<{ offset: number; length: number }>, RegExp]> = [
    [[{ offset: 4, length: 2 }, { offset: 0, length: 2 }], /unsorted or overlaps/],
    [[{ offset: 0, length: 4 }, { offset: 3, length: 2 }], /unsorted or overlaps/],
    [[{ offset: 0, length: 0 }], /invalid/],
    [[{ offset: -1, length: 2 }], /invalid/],
    [[{ offset: 8, length: 4 }], /past the end/],
    [[{ offset: 0.5, length: 1 }], /invalid/],
  ];
  for (const [ext, re] of bad) assert.throws(() => validateExtents(ext, 10), re);
});

Deno.test("normalizeExtents() sorts and merges adjacent and overlapping ranges", () => {
  assert.deepEqual(
    normalizeExtents([
      { offset: 20, length: 5 },
      { offset: 0, length: 10 },
      { offset: 10, length: 2 },
      { offset: 22, length: 10 },
      { offset: 40, length: 0 },
    ]),
    [{ offset: 0, length: 12 }, { offset: 20, length: 12 }],
  );
});

Deno.test("BlockSetBuilder merges in-order and out-of-order additions", () => {
  const b = new BlockSetBuilder();
  for (const x of [10, 11, 12, 5, 6, 100, 7, 11, 13]) b.add(x);
  b.addRange(50, 10);
  b.addRange(55, 10);
  assert.deepEqual(b.build(), [
    { start: 5, count: 3 },
    { start: 10, count: 4 },
    { start: 50, count: 15 },
    { start: 100, count: 1 },
  ]);
});

Deno.test("BlockSetBuilder keeps memory proportional to runs for many stray additions", () => {
  const b = new BlockSetBuilder();
  b.add(1_000_000);
  for (let i = 200_000; i > 0; i--) b.add(i); // all out of order
  assert.deepEqual(b.build(), [{ start: 1, count: 200_000 }, { start: 1_000_000, count: 1 }]);
});

Deno.test("block extents convert to bytes and sum", () => {
  const m = mergeBlockExtents([{ start: 3, count: 1 }, { start: 1, count: 2 }]);
  assert.deepEqual(m, [{ start: 1, count: 3 }]);
  assert.deepEqual(blocksToBytes(m, 1024), [{ offset: 1024, length: 3072 }]);
  assert.equal(extentsLength(blocksToBytes(m, 1024)), 3072);
});
