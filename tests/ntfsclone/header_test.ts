import assert from "node:assert/strict";
import { CorruptImageError, UnsupportedFeatureError } from "../../lib/errors.ts";
import {
  clusterPayloadSize,
  createNtfscloneHeader,
  encodeNtfscloneHeader,
  imageDataOffset,
  type NtfscloneHeader,
  parseNtfscloneHeader,
  restoredSize,
} from "../../lib/ntfsclone/mod.ts";

function fromHex(s: string): Uint8Array {
  const h = s.replace(/\s+/g, "");
  return new Uint8Array(h.match(/../g)!.map((x) => parseInt(x, 16)));
}

/** The header `ntfsclone --save-image` wrote for a 64 MiB device, 4 KiB clusters (notes §2.1). */
const GOLDEN = fromHex(
  "006e7466 73636c6f 6e652d69 6d616765 0a01 00100000 0000000400000000 ff3f000000000000" +
    "3f03000000000000 38000000 000000000000",
);

const GOLDEN_FIELDS: NtfscloneHeader = {
  majorVersion: 10,
  minorVersion: 1,
  clusterSize: 4096,
  deviceSize: 64 << 20,
  nrClusters: 16383,
  inuse: 831,
  offsetToImageData: 56,
};

Deno.test({
  name: "parseNtfscloneHeader() decodes a real ntfsclone 10.1 header",
  permissions: "none",
  fn() {
    assert.equal(GOLDEN.length, 56);
    assert.deepEqual(parseNtfscloneHeader(GOLDEN), GOLDEN_FIELDS);
    assert.equal(imageDataOffset(GOLDEN_FIELDS), 56);
    assert.equal(clusterPayloadSize(GOLDEN_FIELDS, 0), 4096);
    assert.equal(clusterPayloadSize(GOLDEN_FIELDS, 16383), 4096);
    assert.equal(restoredSize(GOLDEN_FIELDS), 64 << 20);
  },
});

Deno.test({
  name: "encodeNtfscloneHeader() round-trips the real header byte for byte",
  permissions: "none",
  fn() {
    assert.deepEqual(encodeNtfscloneHeader(parseNtfscloneHeader(GOLDEN)), GOLDEN);
    assert.deepEqual(encodeNtfscloneHeader(createNtfscloneHeader(GOLDEN_FIELDS)), GOLDEN);
  },
});

Deno.test({
  name: "parseNtfscloneHeader() reads a legacy (pre-10) 46-byte header",
  permissions: "none",
  fn() {
    const b = GOLDEN.slice(0, 46);
    b[16] = 3;
    b[17] = 1;
    const h = parseNtfscloneHeader(b);
    assert.equal(h.majorVersion, 3);
    assert.equal(h.offsetToImageData, 46);
    assert.equal(imageDataOffset(h), 46);
    assert.deepEqual(encodeNtfscloneHeader(h), b);
  },
});

Deno.test({
  name: "parseNtfscloneHeader() keeps a header extension and a small offset",
  permissions: "none",
  fn() {
    const b = new Uint8Array(64);
    b.set(GOLDEN);
    b[0x11] = 7;
    b[0x2e] = 64;
    b[60] = 0xab;
    const h = parseNtfscloneHeader(b);
    assert.equal(h.minorVersion, 7);
    assert.equal(h.offsetToImageData, 64);
    assert.deepEqual(h.extension, b.slice(50, 64));
    assert.deepEqual(encodeNtfscloneHeader(h), b);
    // ntfsclone accepts an offset below 50: the stream then starts at byte 50.
    const s = GOLDEN.slice();
    s[0x2e] = 8;
    assert.equal(imageDataOffset(parseNtfscloneHeader(s)), 50);
  },
});

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error");
}

/** Mutations: [name, byte offset, bytes to write, expected field, expected compat]. */
const MUTATIONS: Array<[string, number, number[], string, string | undefined]> = [
  ["a wrong first magic byte", 0, [1], "magic", "Input file is not an image! (invalid magic)"],
  ["a wrong magic letter", 5, [0x78], "magic", "Input file is not an image! (invalid magic)"],
  [
    "a cluster size that is not a power of two",
    0x12,
    [0xff, 0x0f, 0, 0],
    "cluster_size",
    undefined,
  ],
  ["a zero cluster size", 0x12, [0, 0, 0, 0], "cluster_size", undefined],
  ["a 4 MiB cluster size", 0x12, [0, 0, 0x40, 0], "cluster_size", undefined],
  ["a 128-byte cluster size", 0x12, [0x80, 0, 0, 0], "cluster_size", undefined],
  ["a device smaller than the volume", 0x16, [0, 0, 0, 1, 0, 0, 0, 0], "device_size", undefined],
  ["a device size past 2^53", 0x16, [0, 0, 0, 0, 0, 0, 0, 0x80], "device_size", undefined],
  [
    "a negative nr_clusters",
    0x1e,
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    "nr_clusters",
    undefined,
  ],
  [
    "an nr_clusters past 2^53 / cluster_size",
    0x1e,
    [0, 0, 0, 0, 0, 0, 2, 0],
    "nr_clusters",
    undefined,
  ],
  ["an inuse past 2^53", 0x26, [0, 0, 0, 0, 0, 0, 0, 1], "inuse", undefined],
  ["an offset_to_image_data of 16 MiB", 0x2e, [0, 0, 0, 1], "offset_to_image_data", undefined],
];

for (const [what, off, bytes, field, compat] of MUTATIONS) {
  Deno.test({
    name: `parseNtfscloneHeader() rejects ${what}`,
    permissions: "none",
    fn() {
      const b = GOLDEN.slice();
      b.set(bytes, off);
      const e = catchError(() => parseNtfscloneHeader(b));
      assert.ok(e instanceof CorruptImageError, String(e));
      assert.equal(e.code, "CORRUPT");
      assert.equal(e.details.field, field);
      assert.equal(e.details.offset, off);
      assert.equal(e.details.compat, compat);
      assert.match(e.message, new RegExp(`\\(byte 0x${off.toString(16)}\\)$`));
    },
  });
}

Deno.test({
  name: "parseNtfscloneHeader() refuses format version 11 with ntfsclone's wording",
  permissions: "none",
  fn() {
    const b = GOLDEN.slice();
    b[16] = 11;
    b[17] = 0;
    assert.throws(
      () => parseNtfscloneHeader(b),
      (e: unknown) =>
        e instanceof UnsupportedFeatureError && e.code === "UNSUPPORTED" &&
        e.compat ===
          "Do not know how to handle image format version 11.0.  Please obtain a newer version of ntfsclone.",
    );
  },
});

Deno.test({
  name: "parseNtfscloneHeader() rejects a short header at its end offset",
  permissions: "none",
  fn() {
    for (const len of [0, 17, 18, 45, 49]) {
      assert.throws(
        () => parseNtfscloneHeader(GOLDEN.slice(0, len)),
        (e: unknown) =>
          e instanceof CorruptImageError && e.details.offset === len &&
          e.details.compat === "Short image file...",
      );
    }
  },
});

Deno.test({
  name: "encodeNtfscloneHeader() refuses values the format cannot hold",
  permissions: "none",
  fn() {
    const bad: Array<Partial<NtfscloneHeader>> = [
      { clusterSize: 3000 },
      { majorVersion: 11 },
      { nrClusters: -1 },
      { deviceSize: 4096 },
      { offsetToImageData: 1 << 20 },
      { inuse: 0.5 },
    ];
    for (const b of bad) {
      assert.throws(() => encodeNtfscloneHeader({ ...GOLDEN_FIELDS, ...b }), RangeError);
    }
  },
});
