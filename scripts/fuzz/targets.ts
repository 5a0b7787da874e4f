/**
 * The fuzz targets: every parser and walker that reads untrusted bytes, each seeded from real
 * images (tests/fixtures/fuzz, made by scripts/fixtures/fuzz.sh) or from images our own writers
 * produce in memory.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { MemorySink, MemorySource } from "../../lib/io/mod.ts";
import { ExtVolume, scrambleDirBlock, ScrambleState } from "../../lib/ext/mod.ts";
import { NtfsVolume } from "../../lib/ntfs/mod.ts";
import { Qcow2Reader, writeQcow2 } from "../../lib/qcow2/mod.ts";
import {
  createNtfscloneHeader,
  NtfscloneImageReader,
  parseNtfscloneHeader,
  restoreNtfsclone,
  saveImage,
} from "../../lib/ntfsclone/mod.ts";
import { parseE2imageHeader } from "../../lib/e2image/mod.ts";
import type { FuzzTarget } from "./engine.ts";

const FIXTURES = new URL("../../tests/fixtures/fuzz/", import.meta.url);
function fixture(name: string): Uint8Array {
  return new Uint8Array(gunzipSync(Deno.readFileSync(new URL(`${name}.img.gz`, FIXTURES))));
}

/** A pattern with data, zero runs and holes, for format seeds made in memory. */
function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i >> 9) % 3 === 0 ? 0 : (i * 31 + (i >> 8)) & 0xff;
  return b;
}

/** Reads every allocated byte and a few others of a Source (so lazy tables are parsed). */
function drain(
  s: { size: number; readAt(o: number, b: Uint8Array): number },
  extents?: { offset: number; length: number }[],
): void {
  const buf = new Uint8Array(65536);
  for (const e of extents ?? [{ offset: 0, length: Math.min(s.size, 1 << 22) }]) {
    for (let p = 0; p < e.length && p < 1 << 22; p += buf.length) s.readAt(e.offset + p, buf);
  }
}

function bytesReader(b: Uint8Array) {
  let at = 0;
  return {
    readSync(p: Uint8Array): number | null {
      const n = Math.min(p.length, b.length - at);
      if (n <= 0) return null;
      p.set(b.subarray(at, at + n));
      at += n;
      return n;
    },
  };
}

/** Every target, by name. */
export const TARGETS: FuzzTarget[] = [
  {
    name: "ext-volume",
    seeds: () => [fixture("ext2"), fixture("ext4")],
    hot: () => [[1024, 2048], [2048, 4096], [4096, 65536]],
    run(input) {
      const v = ExtVolume.open(new MemorySource(input));
      v.e2imageSelection({ allData: true, scramble: true, onWarning: () => {} });
      for (let g = 0; g < Math.min(v.groupCount, 64); g++) {
        v.blockBitmap(g);
        v.inodeBitmap(g);
      }
    },
  },
  {
    name: "ext-scramble",
    seeds: () => {
      const img = fixture("ext4");
      const v = ExtVolume.open(new MemorySource(img));
      const sel = v.e2imageSelection({ scramble: true });
      const blocks: Uint8Array[] = [];
      for (const e of sel.scrambleBlocks.slice(0, 4)) {
        blocks.push(img.slice(e.start * v.blockSize, (e.start + 1) * v.blockSize));
      }
      return blocks;
    },
    run(input) {
      scrambleDirBlock(input, 1, new ScrambleState(), () => {});
    },
  },
  {
    name: "ntfs-volume",
    seeds: () => [fixture("ntfs")],
    hot: (s) => [[0, 512], [s.length - 512, s.length]],
    run(input) {
      NtfsVolume.open(new MemorySource(input)).scan();
    },
  },
  {
    name: "qcow2-reader",
    seeds: () =>
      [512, 4096, 65536].flatMap((cs) =>
        ([2, 3] as const).map((version) => {
          const raw = pattern(1 << 20);
          const out = new MemorySink();
          writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: raw.length }], {
            virtualSize: raw.length,
            clusterSize: cs,
            version,
          });
          return out.bytes().slice();
        })
      ),
    hot: () => [[0, 112], [512, 8192]],
    run(input) {
      const r = Qcow2Reader.open(new MemorySource(input));
      drain(r, r.allocatedExtents());
    },
  },
  {
    name: "ntfsclone-restore",
    seeds: () =>
      [512, 4096].map((cs) => {
        // 64 clusters and the backup boot sector after them, as a real volume ends.
        const dev = pattern(64 * cs + 512);
        const header = createNtfscloneHeader({
          clusterSize: cs,
          deviceSize: dev.length,
          nrClusters: 64,
          inuse: 20,
        });
        const out = new MemorySink({ kind: "stream" });
        const used = [{ start: 0, count: 10 }, { start: 30, count: 10 }, { start: 64, count: 1 }];
        saveImage(new MemorySource(dev), out, used, header);
        return out.bytes().slice();
      }),
    hot: () => [[0, 56], [56, 256]],
    run(input) {
      parseNtfscloneHeader(input.subarray(0, Math.min(input.length, 56)));
      // Restore onto a fixed-size device: a write past its end is a RangeError, i.e. a finding.
      const header = new NtfscloneImageReader(bytesReader(input)).header;
      const cap = Math.min(header.deviceSize, 1 << 22);
      const dev = new MemorySink({ kind: "device", capacity: cap });
      try {
        restoreNtfsclone(bytesReader(input), dev);
      } catch (e) {
        if (
          e instanceof RangeError && /too small|passes/.test(e.message) && header.deviceSize > cap
        ) return;
        throw e;
      }
    },
  },
  {
    name: "e2image-header",
    seeds: () => {
      const b = new Uint8Array(1024);
      new DataView(b.buffer).setUint32(0, 0x7f2bb710, true);
      b.set(new TextEncoder().encode("Ext2 Image 1.0"), 4);
      new DataView(b.buffer).setUint32(204, 1024, true);
      return [b];
    },
    run(input) {
      parseE2imageHeader(input);
    },
  },
];
