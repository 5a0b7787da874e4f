import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { crc16, crc32c, crc32cUpdate } from "../../lib/_internal/crc.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function crc32cBitwise(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

Deno.test({
  name: "crc16() gives the CRC-16/ARC and MODBUS check values",
  permissions: "none",
  fn() {
    assertEquals(crc16(0, enc("123456789")), 0xbb3d);
    assertEquals(crc16(0xffff, enc("123456789")), 0x4b37);
    assertEquals(crc16(0x1234, new Uint8Array(0)), 0x1234);
  },
});

Deno.test({
  name: "crc32c() gives the Castagnoli check value and chains like ext2fs_crc32c_le",
  permissions: "none",
  fn() {
    assertEquals(crc32c(enc("123456789")), 0xe3069283);
    assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa);
    const data = new Uint8Array(1000).map((_, i) => (i * 131 + 7) & 0xff);
    for (const split of [0, 1, 7, 8, 9, 500, 999, 1000]) {
      const a = crc32cUpdate(0x12345678, data.subarray(0, split));
      assertEquals(crc32cUpdate(a, data.subarray(split)), crc32cBitwise(0x12345678, data));
    }
  },
});
