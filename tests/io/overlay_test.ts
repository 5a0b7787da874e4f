import assert from "node:assert/strict";
import { MemorySource, OverlaySource } from "../../lib/io/mod.ts";

function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 13 + 7) & 0xff | 1);
}

Deno.test("OverlaySource: random writes read back exactly, the base is never written", () => {
  const base = pattern(64 * 1024);
  const copy = base.slice();
  const o = new OverlaySource(new MemorySource(base), { blockSize: 1024 });
  const model = base.slice();
  let x = 12345;
  const rnd = (n: number) => (x = (x * 1103515245 + 12345) >>> 0) % n;
  for (let k = 0; k < 300; k++) {
    const off = rnd(model.length - 1);
    const len = 1 + rnd(Math.min(3000, model.length - off));
    const data = rnd(3) === 0 ? new Uint8Array(len) : pattern(len).map((v) => v ^ k);
    o.writeAt(off, data);
    model.set(data, off);
    const roff = rnd(model.length), rlen = rnd(model.length - roff) + 1;
    const b = new Uint8Array(rlen);
    assert.equal(o.readAt(roff, b), rlen);
    assert.deepEqual(b, model.subarray(roff, roff + rlen));
  }
  const all = new Uint8Array(model.length);
  o.readAt(0, all);
  assert.deepEqual(all, model);
  assert.deepEqual(base, copy);
});

Deno.test("OverlaySource: zero blocks hold no data; writes past the end are refused", () => {
  const o = new OverlaySource(new MemorySource(pattern(8192)), { blockSize: 4096 });
  o.writeAt(0, new Uint8Array(8192));
  assert.equal(o.changedBlocks, 2);
  assert.equal(o.heldBytes, 0);
  const b = new Uint8Array(8192);
  o.readAt(0, b);
  assert.ok(b.every((v) => v === 0));
  assert.throws(() => o.writeAt(8000, new Uint8Array(200)), RangeError);
});
