/**
 * Shared helpers of the QCOW2 tests: a deterministic raw pattern with data, holes and zero
 * runs, and small wrappers around qemu-img.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mustRun, run } from "../_helpers.ts";
import type { Qcow2MapExtent } from "../../lib/qcow2/mod.ts";

/** A deterministic pseudo-random generator (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * A raw disk of `size` bytes (a multiple of 512): random data, repeated-byte runs (which
 * compress well), all-zero runs of various lengths and alignments (including ones smaller than
 * a cluster and ones spanning several), and data ending mid-cluster.
 */
export function makePattern(size: number, seed = 1): Uint8Array {
  const b = new Uint8Array(size);
  const r = rng(seed);
  let p = 0;
  while (p < size) {
    const kind = r() % 5;
    const len = Math.min(size - p, [512, 3000, 20000, 70000, 300000][r() % 5]! + (r() % 4096));
    if (kind === 0 || kind === 1) {
      for (let i = 0; i < len; i++) b[p + i] = r() & 0xff;
    } else if (kind === 2) {
      b.fill((r() % 255) + 1, p, p + len);
    } // else zero
    p += len;
  }
  return b;
}

/** Runs qemu-img and throws on failure. */
export function qemuImg(...args: string[]): string {
  return mustRun("qemu-img", args).out;
}

/** `qemu-img check` exit status and output. */
export function qemuCheck(path: string): { code: number; out: string } {
  const r = run("qemu-img", ["check", path]);
  return { code: r.code, out: r.out + r.err };
}

/** Converts `img` to raw with qemu-img and returns the bytes. */
export function qemuToRaw(img: string, dir: string): Uint8Array {
  const out = `${dir}/qemu-out-${Math.random().toString(36).slice(2)}.raw`;
  qemuImg("convert", "-O", "raw", img, out);
  const b = Deno.readFileSync(out);
  Deno.removeSync(out);
  return b;
}

/** Data ranges of `qemu-img map --output=json`, merged, as byte extents. */
export function qemuDataExtents(img: string): Array<{ offset: number; length: number }> {
  const map = JSON.parse(qemuImg("map", "--output=json", img)) as Array<
    { start: number; length: number; data: boolean }
  >;
  const out: Array<{ offset: number; length: number }> = [];
  for (const m of map) {
    if (!m.data) continue;
    const last = out[out.length - 1];
    if (last && last.offset + last.length === m.start) last.length += m.length;
    else out.push({ offset: m.start, length: m.length });
  }
  return out;
}

/**
 * Checks `ours` (from `Qcow2Reader.map()`) against `qemu-img map --output=json img`, byte range
 * by byte range: the same kind everywhere, and the same file offset for every data byte.
 */
export function assertMapMatchesQemu(ours: readonly Qcow2MapExtent[], img: string): void {
  const q = JSON.parse(qemuImg("map", "--output=json", img)) as Array<{
    start: number;
    length: number;
    present: boolean;
    zero: boolean;
    data: boolean;
    offset?: number;
  }>;
  let k = 0;
  for (const e of q) {
    const expect = e.data
      ? (e.offset !== undefined ? "data" : "compressed")
      : e.present && e.zero
      ? "zero"
      : "unallocated";
    let g = e.start;
    const end = e.start + e.length;
    while (g < end) {
      while (k < ours.length && ours[k]!.offset + ours[k]!.length <= g) k++;
      const o = ours[k];
      assert.ok(o, `no extent of ours at 0x${g.toString(16)}`);
      assert.equal(o.kind, expect, `kind at 0x${g.toString(16)}`);
      if (expect === "data") {
        assert.equal(
          o.hostOffset! + (g - o.offset),
          e.offset! + (g - e.start),
          `host of 0x${g.toString(16)}`,
        );
      }
      g = Math.min(end, o.offset + o.length);
    }
  }
  const last = ours[ours.length - 1];
  const qlast = q[q.length - 1];
  assert.equal(last ? last.offset + last.length : 0, qlast ? qlast.start + qlast.length : 0);
}
