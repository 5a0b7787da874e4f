import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { CorruptImageError } from "../../lib/errors.ts";
import {
  E2IMAGE_HEADER_SIZE,
  E2IMAGE_MAGIC,
  encodeE2imageHeader,
  parseE2imageHeader,
} from "../../lib/e2image/header.ts";

Deno.test("encodeE2imageHeader() round-trips through parseE2imageHeader()", () => {
  const uuid = new Uint8Array(16).map((_, i) => i + 1);
  const b = encodeE2imageHeader({
    fsHostname: "vm",
    fsDeviceName: "fs.img",
    fsDevice: 0x0801,
    fsUuid: uuid,
    fsBlocksize: 1024,
    imageDevice: 0x803,
    imageInode: 12345,
    imageTime: 1700000000,
    offsetSuper: 1024,
    offsetInode: 3072,
    offsetBlockmap: 2100224,
    offsetInodemap: 2104320,
  });
  assertEquals(b.length, E2IMAGE_HEADER_SIZE);
  assertEquals(new DataView(b.buffer).getUint32(0, true), E2IMAGE_MAGIC);
  const h = parseE2imageHeader(b);
  assertEquals(h.magicDescriptor, "Ext2 Image 1.0");
  assertEquals(h.fsHostname, "vm");
  assertEquals(h.fsDeviceName, "fs.img");
  assertEquals(h.fsUuid, uuid);
  assertEquals(
    [h.fsDevice, h.fsBlocksize, h.imageDevice, h.imageInode, h.imageTime],
    [0x801, 1024, 0x803, 12345, 1700000000],
  );
  assertEquals(
    [h.offsetSuper, h.offsetInode, h.offsetBlockmap, h.offsetInodemap],
    [1024, 3072, 2100224, 2104320],
  );
  assertEquals(encodeE2imageHeader(h), b);
});

Deno.test("encodeE2imageHeader() cuts the device name to 63 bytes plus NUL", () => {
  const h = parseE2imageHeader(encodeE2imageHeader({ fsDeviceName: "x".repeat(100) }));
  assertEquals(h.fsDeviceName, "x".repeat(63));
});

Deno.test("parseE2imageHeader() rejects a wrong magic with libext2fs's wording", () => {
  const b = encodeE2imageHeader({});
  b[0] = 0;
  throws(
    () => parseE2imageHeader(b),
    (e: unknown) =>
      e instanceof CorruptImageError && e.details.offset === 0 &&
      e.details.compat === "Wrong magic number for Ext2 Image Header",
  );
  throws(() => parseE2imageHeader(new Uint8Array(100)), CorruptImageError);
});
