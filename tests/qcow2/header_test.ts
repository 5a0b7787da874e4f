import assert from "node:assert/strict";
import { needs, tempDir } from "../_helpers.ts";
import {
  CorruptImageError,
  LimitExceededError,
  UnsupportedFeatureError,
} from "../../lib/errors.ts";
import {
  encodeQcow2Header,
  parseQcow2Header,
  QCOW2_EXT_FEATURE_TABLE,
  type Qcow2Header,
} from "../../lib/qcow2/mod.ts";
import { qemuImg } from "./_util.ts";

/** A valid v3 header: 64 KiB clusters, 1 GiB disk, qemu-like offsets. */
function sample(over: Partial<Qcow2Header> = {}): Qcow2Header {
  return {
    version: 3,
    backingFileOffset: 0,
    backingFileSize: 0,
    clusterBits: 16,
    size: 1 << 30,
    cryptMethod: 0,
    l1Size: 2,
    l1TableOffset: 0x30000,
    refcountTableOffset: 0x10000,
    refcountTableClusters: 1,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: 112,
    compressionType: 0,
    extraHeader: new Uint8Array(7),
    extensions: [],
    ...over,
  };
}

function cluster0(h: Qcow2Header): Uint8Array {
  const b = new Uint8Array(2 ** h.clusterBits);
  b.set(encodeQcow2Header(h));
  return b;
}

Deno.test({
  name:
    "parseQcow2Header() reads qemu-img's v3 and v2 headers (golden) and re-encodes them exactly",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    qemuImg("create", "-q", "-f", "qcow2", `${dir.path}/v3.qcow2`, "1M");
    qemuImg(
      "create",
      "-q",
      "-f",
      "qcow2",
      "-o",
      "compat=0.10,cluster_size=4096",
      `${dir.path}/v2.qcow2`,
      "5M",
    );
    const b3 = Deno.readFileSync(`${dir.path}/v3.qcow2`).subarray(0, 65536);
    const h3 = parseQcow2Header(b3);
    assert.equal(h3.version, 3);
    assert.equal(h3.clusterBits, 16);
    assert.equal(h3.size, 1048576);
    assert.equal(h3.l1Size, 1);
    assert.equal(h3.l1TableOffset, 0x30000);
    assert.equal(h3.refcountTableOffset, 0x10000);
    assert.equal(h3.refcountTableClusters, 1);
    assert.equal(h3.refcountOrder, 4);
    assert.equal(h3.headerLength, 112);
    assert.equal(h3.compressionType, 0);
    assert.equal(h3.extensions.length, 1);
    assert.equal(h3.extensions[0]!.type, QCOW2_EXT_FEATURE_TABLE);
    assert.equal(h3.extensions[0]!.data.length, 384);
    const e3 = encodeQcow2Header(h3);
    assert.deepEqual(e3, b3.subarray(0, e3.length));
    assert.ok(b3.subarray(e3.length).every((x) => x === 0));

    const b2 = Deno.readFileSync(`${dir.path}/v2.qcow2`).subarray(0, 4096);
    const h2 = parseQcow2Header(b2);
    assert.equal(h2.version, 2);
    assert.equal(h2.clusterBits, 12);
    assert.equal(h2.size, 5 * 1048576);
    assert.equal(h2.l1Size, 3);
    assert.equal(h2.headerLength, 72);
    assert.equal(h2.refcountOrder, 4);
    assert.equal(h2.extensions.length, 0);
    const e2 = encodeQcow2Header(h2);
    assert.deepEqual(e2, b2.subarray(0, e2.length));
    assert.ok(b2.subarray(e2.length).every((x) => x === 0));
  },
});

Deno.test({
  name: "encodeQcow2Header() round-trips v2, v3, extensions and a backing file name",
  permissions: "none",
  fn() {
    const hs = [
      sample(),
      sample({ version: 2, headerLength: 72, extraHeader: new Uint8Array(0) }),
      sample({
        extensions: [{ type: 0x12345678, data: new Uint8Array([1, 2, 3]) }, {
          type: 0xe2792aca,
          data: new TextEncoder().encode("qcow2"),
        }],
        backingFileOffset: 0x200,
        backingFileSize: 8,
        backingFileName: "base.img",
      }),
      sample({
        compressionType: 1,
        incompatibleFeatures: 1n << 3n,
        refcountOrder: 6,
      }),
      sample({ refcountOrder: 0, headerLength: 104, extraHeader: new Uint8Array(0) }),
    ];
    for (const h of hs) {
      const b = cluster0(h);
      const p = parseQcow2Header(b);
      assert.deepEqual(cluster0(p), b);
      assert.equal(p.backingFileName, h.backingFileName);
    }
  },
});

type Mutation = {
  name: string;
  at: number;
  bytes: number[];
  error: new (...a: never[]) => Error;
  field?: string;
  offset?: number;
};

const mutations: Mutation[] = [
  {
    name: "bad magic",
    at: 0,
    bytes: [0x51, 0x46, 0x49, 0xfa],
    error: CorruptImageError,
    field: "magic",
    offset: 0,
  },
  { name: "version 1", at: 4, bytes: [0, 0, 0, 1], error: UnsupportedFeatureError },
  { name: "version 4", at: 4, bytes: [0, 0, 0, 4], error: UnsupportedFeatureError },
  {
    name: "cluster_bits 8",
    at: 0x14,
    bytes: [0, 0, 0, 8],
    error: CorruptImageError,
    field: "cluster_bits",
    offset: 0x14,
  },
  { name: "cluster_bits 22", at: 0x14, bytes: [0, 0, 0, 22], error: UnsupportedFeatureError },
  {
    name: "cluster_bits 0xffffffff",
    at: 0x14,
    bytes: [0xff, 0xff, 0xff, 0xff],
    error: CorruptImageError,
  },
  {
    name: "size past 2^53",
    at: 0x18,
    bytes: [0x00, 0x40, 0, 0, 0, 0, 0, 0],
    error: LimitExceededError,
  },
  {
    name: "crypt_method 3",
    at: 0x20,
    bytes: [0, 0, 0, 3],
    error: CorruptImageError,
    field: "crypt_method",
    offset: 0x20,
  },
  {
    name: "l1_size too small",
    at: 0x24,
    bytes: [0, 0, 0, 1],
    error: CorruptImageError,
    field: "l1_size",
    offset: 0x24,
  },
  { name: "l1_size above 4194304", at: 0x24, bytes: [0, 0x40, 0, 1], error: LimitExceededError },
  {
    name: "l1_table_offset unaligned",
    at: 0x28,
    bytes: [0, 0, 0, 0, 0, 3, 0, 8],
    error: CorruptImageError,
    field: "l1_table_offset",
    offset: 0x28,
  },
  {
    name: "l1_table_offset past 2^53",
    at: 0x28,
    bytes: [0xff, 0, 0, 0, 0, 0, 0, 0],
    error: LimitExceededError,
  },
  {
    name: "refcount_table_offset unaligned",
    at: 0x30,
    bytes: [0, 0, 0, 0, 0, 1, 0, 1],
    error: CorruptImageError,
    field: "refcount_table_offset",
    offset: 0x30,
  },
  {
    name: "refcount_table_clusters 0",
    at: 0x38,
    bytes: [0, 0, 0, 0],
    error: CorruptImageError,
    field: "refcount_table_clusters",
    offset: 0x38,
  },
  {
    name: "refcount_table_clusters 129",
    at: 0x38,
    bytes: [0, 0, 0, 129],
    error: LimitExceededError,
  },
  { name: "nb_snapshots 65537", at: 0x3c, bytes: [0, 1, 0, 1], error: LimitExceededError },
  {
    name: "snapshots_offset unaligned",
    at: 0x40,
    bytes: [0, 0, 0, 0, 0, 0, 0x10, 0],
    error: CorruptImageError,
    field: "snapshots_offset",
    offset: 0x40,
  },
  {
    name: "compression bit without type",
    at: 0x48,
    bytes: [0, 0, 0, 0, 0, 0, 0, 8],
    error: CorruptImageError,
    field: "incompatible_features",
    offset: 0x48,
  },
  {
    name: "extended L2 with 8 KiB clusters",
    at: 0x14,
    bytes: [0, 0, 0, 13, 0, 0, 0, 0, 0x40, 0, 0, 0],
    error: CorruptImageError,
  },
  {
    name: "refcount_order 7",
    at: 0x60,
    bytes: [0, 0, 0, 7],
    error: CorruptImageError,
    field: "refcount_order",
    offset: 0x60,
  },
  {
    name: "header_length 103",
    at: 0x64,
    bytes: [0, 0, 0, 103],
    error: CorruptImageError,
    field: "header_length",
    offset: 0x64,
  },
  {
    name: "header_length past the cluster",
    at: 0x64,
    bytes: [0, 1, 0, 8],
    error: CorruptImageError,
    field: "header_length",
    offset: 0x64,
  },
  { name: "compression_type 2", at: 0x68, bytes: [2], error: UnsupportedFeatureError },
  {
    name: "zstd type without its bit",
    at: 0x68,
    bytes: [1],
    error: CorruptImageError,
    field: "incompatible_features",
  },
  {
    name: "backing file offset past cluster 0",
    at: 0x08,
    bytes: [0, 0, 0, 0, 0, 1, 0, 8],
    error: CorruptImageError,
    field: "backing_file_offset",
    offset: 0x08,
  },
  {
    name: "backing file name too long",
    at: 0x08,
    bytes: [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4, 0],
    error: CorruptImageError,
    field: "backing_file_size",
    offset: 0x10,
  },
  {
    name: "extension longer than cluster 0",
    at: 0x70,
    bytes: [0, 0, 0, 9, 0, 1, 0, 0],
    error: CorruptImageError,
    field: "length",
    offset: 0x74,
  },
];

for (const m of mutations) {
  Deno.test({
    name: `parseQcow2Header() rejects ${m.name}`,
    permissions: "none",
    fn() {
      const b = cluster0(sample());
      b.set(m.bytes, m.at);
      assert.throws(() => parseQcow2Header(b), (e: unknown) => {
        assert.ok(e instanceof m.error, `${m.name}: got ${e}`);
        if (m.field !== undefined || m.offset !== undefined) {
          assert.ok(e instanceof CorruptImageError);
          if (m.field !== undefined) assert.equal(e.details.field, m.field);
          if (m.offset !== undefined) {
            assert.equal(e.details.offset, m.offset);
            assert.match(e.message, new RegExp(`byte 0x${m.offset.toString(16)}\\)`));
          }
        }
        return true;
      });
    },
  });
}

Deno.test({
  name: "parseQcow2Header() rejects truncated headers and accepts a header cut after its end",
  permissions: "none",
  fn() {
    const b = cluster0(sample());
    for (const n of [0, 8, 71, 103]) {
      assert.throws(() => parseQcow2Header(b.subarray(0, n)), CorruptImageError, `length ${n}`);
    }
    assert.throws(() => parseQcow2Header(b.subarray(0, 111)), CorruptImageError);
    assert.equal(parseQcow2Header(b.subarray(0, 112)).extensions.length, 0);
  },
});
