/**
 * ntfsclone's progress lines and number formats, reproduced bit for bit: float32 arithmetic,
 * `%6.2f` with glibc's round-half-even on the exact binary value, `\r` between lines and a
 * final `100.00 percent completed\n` only when the counter reaches its stop value.
 *
 * @module
 */
import type { TextWriter } from "./context.ts";

/** Formats `x` with `digits` decimals as glibc's printf does (exact value, ties to even). */
export function printfFixed(x: number, digits: number): string {
  // toFixed() rounds the exact binary value, but breaks exact ties upwards; glibc rounds
  // them to even. An exact tie shows as a 5 followed only by zeros in the full expansion.
  const full = x.toFixed(Math.min(100, digits + 60));
  const cut = full.length - 60;
  const rest = full.slice(cut);
  if (!/^50*$/.test(rest)) return x.toFixed(digits);
  const kept = full.slice(0, cut);
  const last = Number(
    kept[kept.length - 1] === "." ? kept[kept.length - 2] : kept[kept.length - 1],
  );
  if (last % 2 === 0) return kept.endsWith(".") ? kept.slice(0, -1) : kept;
  return x.toFixed(digits); // odd: rounding away from zero is to even
}

/** `ceil(bytes / 1e6)`, ntfsclone's "MB". */
export function megabytes(bytes: number): number {
  return Math.ceil(bytes / 1e6);
}

/**
 * A progress bar of ntfsclone: `update(current)` prints `"%6.2f percent completed\r"` when
 * `current % 100 == 0`, and `"100.00 percent completed\n"` when `current == stop`.
 * {@linkcode NtfsProgress.advanceTo} prints every line a counter passing through all the
 * values up to `current` would have printed, so callers may advance in batches.
 */
export class NtfsProgress {
  readonly #out: TextWriter;
  readonly #quiet: boolean;
  readonly #stop: number;
  readonly #unit: number;
  #at = 0;

  /** A bar counting from 0 to `stop`. */
  constructor(out: TextWriter, stop: number, quiet: boolean) {
    this.#out = out;
    this.#quiet = quiet;
    this.#stop = stop;
    this.#unit = Math.fround(100 / stop);
  }

  /** The last counter value passed. */
  get current(): number {
    return this.#at;
  }

  /** One counter value, printed if it is a multiple of 100 or the stop value. */
  update(current: number): void {
    if (current > this.#at) this.#at = current;
    if (this.#quiet) return;
    if (current !== this.#stop) {
      if (current % 100 !== 0) return;
      const pct = Math.fround(this.#unit * Math.fround(current));
      this.#out.write(`${printfFixed(pct, 2).padStart(6)} percent completed\r`);
    } else this.#out.write("100.00 percent completed\n");
  }

  /** Passes every counter value from the last one (exclusive) to `current` (inclusive). */
  advanceTo(current: number): void {
    const from = this.#at;
    if (current <= from) return;
    let next = Math.floor(from / 100) * 100 + 100;
    for (; next <= current; next += 100) {
      if (next !== this.#stop) this.update(next);
    }
    if (this.#stop > from && this.#stop <= current) this.update(this.#stop);
    this.#at = current;
  }
}
