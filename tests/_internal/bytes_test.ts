import assert from "node:assert/strict";
import {
  addSafe,
  isPowerOfTwo,
  isZero,
  mulSafe,
  put32,
  put64,
  put64be,
  u16,
  u16be,
  u32,
  u32be,
  u64,
  u64be,
  u64n,
} from "../../lib/_internal/bytes.ts";
import { CorruptImageError } from "../../lib/errors.ts";

Deno.test("little- and big-endian readers decode known bytes", () => {
  const b = new Uint8Array([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]);
  assert.equal(u16(b, 0), 0x0201);
  assert.equal(u32(b, 0), 0x04030201);
  assert.equal(u32be(b, 0), 0x01020304);
  assert.equal(u16be(b, 6), 0x0708);
  assert.equal(u64n(b, 0), 0x0807060504030201n);
  assert.equal(u32(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0), 0xffffffff);
});

Deno.test("u64() narrows up to 2^53 and rejects larger values with a CorruptImageError", () => {
  const b = new Uint8Array(8);
  put64(b, 0, Number.MAX_SAFE_INTEGER);
  assert.equal(u64(b, 0), Number.MAX_SAFE_INTEGER);
  b[6] = 0x20; // 2^53
  assert.throws(() => u64(b, 0), CorruptImageError);
  const c = new Uint8Array(8);
  put64be(c, 0, 2 ** 40 + 5);
  assert.equal(u64be(c, 0), 2 ** 40 + 5);
});

Deno.test("readers reject fields outside the buffer with CorruptImageError, never RangeError", () => {
  const b = new Uint8Array(3);
  for (const f of [() => u32(b, 0), () => u16(b, 2), () => u64(b, 0), () => u16(b, -1)]) {
    assert.throws(
      f,
      (e) => e instanceof CorruptImageError && /outside a 3-byte buffer/.test(e.message),
    );
  }
});

Deno.test("writers round-trip through readers", () => {
  const b = new Uint8Array(8);
  put32(b, 0, 0xdeadbeef);
  assert.equal(u32(b, 0), 0xdeadbeef);
  put64(b, 0, 2 ** 52 + 3);
  assert.equal(u64(b, 0), 2 ** 52 + 3);
});

Deno.test("checked arithmetic and predicates", () => {
  assert.equal(mulSafe(2 ** 26, 2 ** 26), 2 ** 52);
  assert.throws(() => mulSafe(2 ** 30, 2 ** 30), RangeError);
  assert.throws(() => addSafe(Number.MAX_SAFE_INTEGER, 1), RangeError);
  assert.ok(isPowerOfTwo(1) && isPowerOfTwo(4096) && isPowerOfTwo(2 ** 40));
  assert.ok(!isPowerOfTwo(0) && !isPowerOfTwo(3) && !isPowerOfTwo(-4) && !isPowerOfTwo(1.5));
  const z = new Uint8Array(4099);
  assert.ok(isZero(z) && isZero(z.subarray(1)));
  z[4098] = 1;
  assert.ok(!isZero(z) && !isZero(z.subarray(3)));
});
