/**
 * A small progress reporter for fsimage's own commands: throttled by a clock, written to
 * stderr only, silent when quiet. The e2image and ntfsclone commands reproduce their
 * originals' exact formats in their own files; they can reuse {@linkcode Clock}.
 *
 * @module
 */
import type { TextWriter } from "./context.ts";

/** A source of time in milliseconds, injectable for deterministic tests. */
export interface Clock {
  /** Milliseconds since an arbitrary origin. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => performance.now() };

/** Options of {@linkcode ProgressReporter}. */
export interface ProgressOptions {
  /** Where to write (stderr). */
  out: TextWriter;
  /** Write nothing at all. */
  quiet?: boolean;
  /** Minimum interval between updates, in ms (default 1000). */
  intervalMs?: number;
  /** Time source. */
  clock?: Clock;
  /** Whether the output is a terminal (updates overwrite one line with `\r`). */
  terminal?: boolean;
}

/** Formats a byte count with binary units ("1.5 GiB"). */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/**
 * Prints "label: 42.0% (1.0 GiB of 2.4 GiB)" at most once per interval, and a final line.
 *
 * @example
 * ```ts
 * import { BufferWriter } from "./context.ts";
 * import { ProgressReporter } from "./progress.ts";
 * const out = new BufferWriter();
 * let t = 0;
 * const p = new ProgressReporter("Copying", { out, clock: { now: () => t } });
 * p.update(1, 2); t = 2000; p.update(1, 2); p.finish(2, 2);
 * console.assert(out.text.includes("50.0%") && out.text.endsWith("100.0% (2 B of 2 B)\n"));
 * ```
 */
export class ProgressReporter {
  #label: string;
  #o: Required<Omit<ProgressOptions, "terminal">> & { terminal: boolean };
  #last = -Infinity;
  /** Creates a reporter that prints lines starting with `label`. */
  constructor(label: string, options: ProgressOptions) {
    this.#label = label;
    this.#o = {
      out: options.out,
      quiet: options.quiet ?? false,
      intervalMs: options.intervalMs ?? 1000,
      clock: options.clock ?? systemClock,
      terminal: options.terminal ?? false,
    };
  }
  #line(done: number, total: number): string {
    const pct = total > 0 ? (100 * done / total).toFixed(1) : "100.0";
    return `${this.#label}: ${pct}% (${formatBytes(done)} of ${formatBytes(total)})`;
  }
  /** Reports progress; prints only when the interval has passed. */
  update(done: number, total: number): void {
    if (this.#o.quiet) return;
    const t = this.#o.clock.now();
    if (t - this.#last < this.#o.intervalMs) return;
    this.#last = t;
    this.#o.out.write(this.#line(done, total) + (this.#o.terminal ? "\r" : "\n"));
  }
  /** Prints the final line. */
  finish(done: number, total: number): void {
    if (this.#o.quiet) return;
    this.#o.out.write(this.#line(done, total) + "\n");
  }
}
