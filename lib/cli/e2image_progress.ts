/**
 * e2image's `-p` progress output, character for character (e2fsprogs 1.47.0): `Copying ` then
 * a count that is erased with backspaces and rewritten once per second, a remaining-time
 * estimate after five seconds, and a final `\rCopied …` line. The clock is injectable so tests
 * are deterministic.
 *
 * @module
 */
import type { TextWriter } from "./context.ts";

/** Whole seconds since the epoch, like C `time(NULL)`. */
export type SecondsClock = () => number;

/** The real clock. */
export const systemSeconds: SecondsClock = (): number => Math.floor(Date.now() / 1000);

/** `(int)(100.0 * ((float)a / (float)b) + 0.5)`, as e2image computes its percentage. */
export function e2imagePercent(done: number, total: number): number {
  const q = Math.fround(Math.fround(done) / Math.fround(total));
  const v = 100.0 * q + 0.5;
  if (!Number.isFinite(v)) return v > 0 ? 2147483647 : -2147483648;
  return Math.trunc(v);
}

/** `strftime("%T", gmtime(&seconds))`: HH:MM:SS, wrapping at 24 hours. */
export function formatHms(seconds: number): string {
  const s = ((seconds % 86400) + 86400) % 86400;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}`;
}

/** MiB per second as e2image prints it: `(float)written / (1048576 / bs) / duration`. */
function mbPerSecond(written: number, blockSize: number, duration: number): string {
  const perMiB = Math.trunc(1048576 / blockSize);
  const v = Math.fround(Math.fround(written) / Math.fround(perMiB)) / duration;
  return Number.isFinite(v) ? v.toFixed(2) : (v > 0 ? "inf" : "-nan");
}

/**
 * The `-p` reporter of one raw copy. Call {@linkcode E2imageProgress.start} before the copy,
 * {@linkcode E2imageProgress.update} as blocks are processed, {@linkcode E2imageProgress.finish}
 * at the end.
 *
 * @example
 * ```ts
 * import { E2imageProgress } from "./e2image_progress.ts";
 * let text = "";
 * const p = new E2imageProgress({ write: (t) => (text += t) }, 100, 4096, () => 0);
 * p.start();
 * p.update(100);
 * p.finish(100);
 * console.assert(text.endsWith("\rCopied 100 / 100 blocks (100%) in 00:00:00        \n"));
 * ```
 */
export class E2imageProgress {
  readonly #out: TextWriter;
  readonly #total: number;
  readonly #blockSize: number;
  readonly #clock: SecondsClock;
  #start = 0;
  #last = 0;
  #printed = 0;

  /** A reporter for `total` marked blocks of `blockSize` bytes, writing to `out` (stderr). */
  constructor(out: TextWriter, total: number, blockSize: number, clock: SecondsClock) {
    this.#out = out;
    this.#total = total;
    this.#blockSize = blockSize;
    this.#clock = clock;
  }

  #count(written: number): string {
    return `${written} / ${this.#total} blocks (${e2imagePercent(written, this.#total)}%)`;
  }

  /** Prints `Copying 0 / N blocks (0%)`. */
  start(): void {
    const s = this.#count(0);
    this.#out.write(`Copying ${s}`);
    this.#printed = s.length;
    this.#start = this.#last = this.#clock();
  }

  /** Rewrites the count when the clock's second has changed since the last rewrite. */
  update(written: number): void {
    const now = this.#clock();
    if (now === this.#last) return;
    this.#last = now;
    let s = this.#count(written);
    const duration = now - this.#start;
    if (duration > 5 && written > 0) {
      const est = Math.trunc(duration * this.#total / written) - duration;
      s += ` ${formatHms(est)} remaining at ${
        mbPerSecond(written, this.#blockSize, duration)
      } MB/s`;
    }
    this.#out.write("\b".repeat(this.#printed) + s);
    this.#printed = s.length;
  }

  /** Prints the final `Copied …` line. */
  finish(written: number): void {
    const duration = this.#clock() - this.#start;
    let s = `\rCopied ${this.#count(written)} in ${formatHms(duration)} `;
    if (duration >= 1) s += `at ${mbPerSecond(written, this.#blockSize, duration)} MB/s`;
    this.#out.write(s + "       \n");
  }
}
