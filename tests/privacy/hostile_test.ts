/**
 * Hostile input: audit and scrub of damaged images (seeded random byte mutations of the
 * metadata, truncation, a wrong magic) fail only with fsimage's domain errors, never with a
 * bare RangeError or a hang, and a scrub never writes outside the image.
 */
import assert from "node:assert/strict";
import { mustRun, needs, tempDir } from "../_helpers.ts";
import { FsimageError } from "../../lib/errors.ts";
import { MemorySink, MemorySource } from "../../lib/io/mod.ts";
import { auditExt } from "../../lib/ext/audit.ts";
import { scrubExt } from "../../lib/ext/scrub.ts";
import { auditNtfs } from "../../lib/ntfs/audit.ts";
import { scrubNtfs } from "../../lib/ntfs/scrub.ts";
import { NtfsVolume } from "../../lib/ntfs/volume.ts";
import { buildExtUnmounted, SECRET } from "./_fixtures.ts";

type Run = (img: MemorySink) => unknown;

/** Mutates `n` copies of `image` (only its non-zero 512-byte sectors) and runs each `run`. */
function mutate(image: Uint8Array, runs: Run[], n: number, seed: number): number {
  const sectors: number[] = [];
  for (let o = 0; o < image.length; o += 512) {
    if (image.subarray(o, o + 512).some((x) => x !== 0)) sectors.push(o);
  }
  let x = seed >>> 0;
  const rnd = (m: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % m;
  };
  let failures = 0;
  for (let i = 0; i < n; i++) {
    const b = image.slice();
    const edits = 1 + rnd(64);
    for (let k = 0; k < edits; k++) b[sectors[rnd(sectors.length)]! + rnd(512)] = rnd(256);
    for (const run of runs) {
      const sink = new MemorySink({ kind: "device", capacity: b.length });
      sink.writeAt(0, b);
      try {
        run(sink);
      } catch (e) {
        if (!(e instanceof FsimageError)) throw e;
        failures++;
      }
      assert.equal(sink.size, b.length);
    }
  }
  return failures;
}

Deno.test({
  name: "auditExt() and scrubExt() survive 150 mutated ext metadata images",
  ...needs("mkfs.ext4", "debugfs", "e2image"),
  fn() {
    using tmp = tempDir("fsp-");
    const fs = buildExtUnmounted(tmp.path, "h", ["-O", "inline_data", "-b", "1024"]);
    mustRun("e2image", ["-r", fs, `${tmp.path}/m.raw`]);
    const meta = Deno.readFileSync(`${tmp.path}/m.raw`);
    mutate(meta, [(s) => auditExt(s), (s) => scrubExt(s)], 150, 4711);
  },
});

Deno.test({
  name: "auditNtfs() and scrubNtfs() survive 100 mutated NTFS metadata images",
  ...needs("mkntfs", "ntfsclone"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = `${tmp.path}/n.img`;
    mustRun("truncate", ["-s", "8M", img]);
    mustRun("mkntfs", ["-q", "-F", "-f", "-L", SECRET, img]);
    mustRun("ntfsclone", ["-q", "-m", "-o", `${tmp.path}/m.img`, img]);
    const meta = Deno.readFileSync(`${tmp.path}/m.img`);
    mutate(meta, [(s) => auditNtfs(s), (s) => scrubNtfs(s)], 100, 42);
  },
});

Deno.test("auditExt() and auditNtfs() refuse garbage and truncated images", {
  permissions: "none",
}, () => {
  const garbage = new MemorySource(new Uint8Array(4096).fill(0x5a));
  assert.throws(() => auditExt(garbage), FsimageError);
  assert.throws(() => auditNtfs(garbage), FsimageError);
  const ext = new Uint8Array(2048);
  ext[1080] = 0x53, ext[1081] = 0xef; // magic only: the superblock checks reject it
  assert.throws(() => auditExt(new MemorySource(ext)), FsimageError);
  const ntfs = new Uint8Array(512);
  ntfs.set(new TextEncoder().encode("NTFS    "), 3);
  assert.throws(() => auditNtfs(new MemorySource(ntfs)), FsimageError);
  assert.throws(() => auditNtfs(new MemorySource(new Uint8Array(100))), FsimageError);
});

Deno.test({
  name: "scrubNtfs() skips a record whose attributes are corrupt and the audit still names it",
  ...needs("mkntfs", "ntfscp"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = `${tmp.path}/p.img`;
    mustRun("truncate", ["-s", "8M", img]);
    mustRun("mkntfs", ["-q", "-F", "-f", img]);
    Deno.writeTextFileSync(`${tmp.path}/src.txt`, "hi\n");
    mustRun("ntfscp", [img, `${tmp.path}/src.txt`, `${SECRET}-a.txt`]);
    mustRun("ntfscp", [img, `${tmp.path}/src.txt`, `${SECRET}-b.txt`]);
    const bytes = Deno.readFileSync(img);
    const src = new MemorySource(bytes);
    const vol = NtfsVolume.open(src);
    const at = vol.boot.mftLcn * vol.clusterSize + 64 * vol.mftRecordSize;
    const attrs = bytes[at + 0x14]! | (bytes[at + 0x15]! << 8);
    bytes[at + attrs + 4] = 3; // the first attribute's length: not a multiple of 8
    const sink = new MemorySink({ kind: "device", capacity: bytes.length });
    sink.writeAt(0, bytes);
    const r = scrubNtfs(sink);
    assert.equal(r.unreadableRecords, 1);
    const after = auditNtfs(sink);
    const names = after.findings.find((f) => f.kind === "names")!;
    assert.deepEqual(names.samples, [`${SECRET}-a.txt`]);
    assert.equal(after.clean, false);
  },
});
