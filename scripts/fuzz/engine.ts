/**
 * A small seeded mutation fuzzer. Each target turns bytes into a run of one parser or walker;
 * the engine mutates the target's seed inputs (single bytes and bits, whole little- and
 * big-endian fields set to boundary values, truncations, extensions, copied and zeroed ranges)
 * and classifies each outcome: success or a domain error (`FsimageError`) is fine; any other
 * exception, or a case slower than the time limit, is a finding.
 *
 * @module
 */
import { FsimageError } from "../../lib/errors.ts";

/** A fuzz target. */
export interface FuzzTarget {
  /** Short unique name, e.g. "qcow2-reader". */
  name: string;
  /** Valid inputs to start from (real fixtures). Called once. */
  seeds(): Uint8Array[];
  /** Runs the code under test on `input`; throws on failure. */
  run(input: Uint8Array): void;
  /** Byte ranges where mutations matter most (headers, tables); default: the whole input. */
  hot?(seed: Uint8Array): Array<[number, number]>;
}

/** A failing case. */
export interface FuzzFinding {
  /** Target name. */
  target: string;
  /** Case number. */
  index: number;
  /** "crash" (a non-domain exception) or "slow" (over the time limit). */
  kind: "crash" | "slow";
  /** The error text or timing. */
  detail: string;
  /** The input that failed. */
  input: Uint8Array;
}

/** Summary of a fuzz run over one target. */
export interface FuzzReport {
  /** Target name. */
  target: string;
  /** Cases run. */
  cases: number;
  /** Cases that succeeded. */
  ok: number;
  /** Cases that ended in a domain error. */
  rejected: number;
  /** Findings (crashes and slow cases). */
  findings: FuzzFinding[];
  /** Slowest case in ms. */
  slowestMs: number;
}

/** A seeded PRNG (mulberry32). */
export class Rng {
  #s: number;
  /** Seeds the generator. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform u32. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** A uniform integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 0x100000000) * n);
  }
  /** Picks one element. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]!;
  }
}

const INTERESTING_32 = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x7fff,
  0x8000,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xfffffffe,
  0xffffffff,
];

function setField(b: Uint8Array, off: number, size: number, v: bigint, be: boolean): void {
  for (let i = 0; i < size && off + i < b.length; i++) {
    const byte = Number((v >> BigInt(8 * i)) & 0xffn);
    b[be ? off + size - 1 - i : off + i] = byte;
  }
}

/** Returns a mutated copy of `seed` (1–4 stacked mutations). */
export function mutate(seed: Uint8Array, rng: Rng, hot?: Array<[number, number]>): Uint8Array {
  let b: Uint8Array = seed.slice();
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    if (b.length === 0) break;
    const [lo, hi] = hot && hot.length && rng.below(4) !== 0 ? rng.pick(hot) : [0, b.length];
    const span = Math.max(1, Math.min(hi, b.length) - lo);
    const at = Math.min(b.length - 1, lo + rng.below(span));
    switch (rng.below(9)) {
      case 0:
        b[at] = b[at]! ^ (1 << rng.below(8));
        break;
      case 1:
        b[at] = rng.below(256);
        break;
      case 2:
      case 3: {
        const size = rng.pick([2, 4, 8]);
        const aligned = at - (at % size);
        const v = BigInt(rng.pick(INTERESTING_32)) |
          (size === 8 && rng.below(2) ? BigInt(rng.pick(INTERESTING_32)) << 32n : 0n);
        setField(b, aligned, size, v, rng.below(2) === 1);
        break;
      }
      case 4: {
        const size = rng.pick([2, 4, 8]);
        const aligned = at - (at % size);
        setField(
          b,
          aligned,
          size,
          BigInt(b.length + rng.below(64) - 32) & 0xffffffffn,
          rng.below(2) === 1,
        );
        break;
      }
      case 5:
        b = b.slice(0, rng.below(b.length));
        break;
      case 6: {
        const n = new Uint8Array(b.length + 1 + rng.below(4096));
        n.set(b);
        for (let i = b.length; i < n.length; i++) n[i] = rng.below(256);
        b = n;
        break;
      }
      case 7: {
        const len = 1 + rng.below(Math.min(512, b.length));
        const from = rng.below(b.length - len + 1);
        b.copyWithin(Math.min(at, b.length - len), from, from + len);
        break;
      }
      default: {
        const len = 1 + rng.below(Math.min(256, b.length - at));
        b.fill(rng.below(2) ? 0 : 0xff, at, at + len);
      }
    }
  }
  return b;
}

/**
 * Runs `cases` mutated inputs through `target`, starting from its seeds, with a per-case time
 * limit. Deterministic for a given seed.
 */
export function fuzz(
  target: FuzzTarget,
  options: {
    cases: number;
    seed: number;
    timeLimitMs?: number;
    onFinding?: (f: FuzzFinding) => void;
  },
): FuzzReport {
  const rng = new Rng(options.seed);
  const seeds = target.seeds();
  if (seeds.length === 0) throw new Error(`fuzz target ${target.name} has no seeds`);
  const hot = seeds.map((s) => target.hot?.(s));
  const limit = options.timeLimitMs ?? 2000;
  const rep: FuzzReport = {
    target: target.name,
    cases: 0,
    ok: 0,
    rejected: 0,
    findings: [],
    slowestMs: 0,
  };
  for (let i = 0; i < options.cases; i++) {
    const k = rng.below(seeds.length);
    const input = i < seeds.length ? seeds[i]!.slice() : mutate(seeds[k]!, rng, hot[k]);
    const t0 = performance.now();
    let finding: FuzzFinding | undefined;
    try {
      target.run(input);
      rep.ok++;
    } catch (e) {
      if (e instanceof FsimageError) rep.rejected++;
      else {
        finding = {
          target: target.name,
          index: i,
          kind: "crash",
          detail: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e),
          input,
        };
      }
    }
    const ms = performance.now() - t0;
    rep.slowestMs = Math.max(rep.slowestMs, ms);
    if (!finding && ms > limit) {
      finding = {
        target: target.name,
        index: i,
        kind: "slow",
        detail: `${ms.toFixed(0)} ms`,
        input,
      };
    }
    if (finding) {
      rep.findings.push(finding);
      options.onFinding?.(finding);
    }
    rep.cases++;
  }
  return rep;
}
