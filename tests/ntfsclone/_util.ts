/**
 * Helpers of the ntfsclone tests: in-memory readers with controllable chunking, a seeded PRNG,
 * synthetic images (no permissions needed).
 *
 * @module
 */
import type { ReaderSync } from "../../lib/io/types.ts";
import { MemorySink } from "../../lib/io/memory.ts";
import {
  createNtfscloneHeader,
  type NtfscloneHeader,
  NtfscloneImageWriter,
} from "../../lib/ntfsclone/mod.ts";

/** A ReaderSync over `bytes` returning at most `chunk` bytes per call (a pipe's short reads). */
export function memReader(bytes: Uint8Array, chunk = 1 << 20): ReaderSync & { reads: number } {
  let at = 0;
  return {
    reads: 0,
    readSync(p: Uint8Array): number | null {
      this.reads++;
      const n = Math.min(p.length, bytes.length - at, chunk);
      if (n <= 0) return null;
      p.set(bytes.subarray(at, at + n));
      at += n;
      return n;
    },
  };
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A synthetic image: random used runs, device a bit larger than the volume. */
export function syntheticImage(
  seed: number,
  opts: { clusterSize?: number; nrClusters?: number; extra?: number } = {},
): { header: NtfscloneHeader; image: Uint8Array; device: Uint8Array } {
  const cs = opts.clusterSize ?? 512;
  const nr = opts.nrClusters ?? 300;
  const deviceSize = nr * cs + (opts.extra ?? 512);
  const rnd = prng(seed);
  const device = new Uint8Array(deviceSize);
  for (let i = 0; i < device.length; i += 4) device[i] = (rnd() * 256) | 0;
  const header = createNtfscloneHeader({ clusterSize: cs, deviceSize, nrClusters: nr, inuse: 0 });
  const sink = new MemorySink({ kind: "stream" });
  const w = new NtfscloneImageWriter(sink, header, { bufferSize: 1000 });
  let lcn = 0;
  while (lcn <= nr) {
    const used = rnd() < 0.6;
    const run = Math.min(nr + 1 - lcn, 1 + ((rnd() * 12) | 0));
    if (used || lcn === 0 || lcn + run > nr) {
      w.clusters(device.slice(lcn * cs, Math.min((lcn + run) * cs, deviceSize)));
    } else w.gap(run);
    lcn += run;
  }
  w.finish();
  return { header, image: sink.bytes().slice(), device };
}
