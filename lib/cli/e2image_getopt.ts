/**
 * The two C library routines whose exact behaviour e2image's command line depends on: glibc
 * `getopt` (with GNU argument permutation and clustered flags) and `strtoull` with base 0.
 * `node:util`'s `parseArgs` differs from getopt in too many corners (a flag's argument that
 * starts with `-`, `-ro1`, `--`) to give drop-in behaviour, so this is a small faithful one.
 *
 * @module
 */

/** One event of {@linkcode getopt}, in command-line order. */
export type GetoptEvent =
  /** An option letter and, for options declared with `:`, its argument. */
  | { kind: "option"; option: string; argument?: string }
  /** A letter not in the option string: getopt's "invalid option -- 'X'". */
  | { kind: "invalid"; option: string }
  /** An option that needs an argument came last: "option requires an argument -- 'X'". */
  | { kind: "missing"; option: string };

/** What {@linkcode getopt} returns. */
export interface GetoptResult {
  /** Options (and errors) in the order glibc getopt reports them. */
  events: GetoptEvent[];
  /** The non-option arguments in their original order (GNU permutation moves them last). */
  operands: string[];
}

/**
 * Parses `args` like glibc `getopt(argc, argv, optstring)` in its default (permuting) mode.
 * A lone `-` is an operand; `--` ends the options; in a cluster like `-ro5` the first letter
 * that takes an argument swallows the rest of the cluster, or else the next argument, whatever
 * it looks like. Parsing stops at the first error event, as a caller that exits on `'?'` would.
 *
 * @example
 * ```ts
 * import { getopt } from "./e2image_getopt.ts";
 * const r = getopt(["fs.img", "-ro", "1048576", "out"], "b:B:nrsIQafo:O:pc");
 * console.assert(r.operands.join() === "fs.img,out");
 * console.assert(r.events.length === 2 && r.events[1]!.kind === "option");
 * ```
 */
export function getopt(args: readonly string[], optstring: string): GetoptResult {
  const takesArg = new Map<string, boolean>();
  for (let i = 0; i < optstring.length; i++) {
    const c = optstring[i]!;
    if (c === ":") continue;
    takesArg.set(c, optstring[i + 1] === ":");
  }
  const events: GetoptEvent[] = [];
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (a.length < 2 || a[0] !== "-") {
      operands.push(a);
      continue;
    }
    const chars = [...a.slice(1)];
    for (let j = 0; j < chars.length; j++) {
      const c = chars[j]!;
      const needs = takesArg.get(c);
      if (needs === undefined) {
        events.push({ kind: "invalid", option: c });
        return { events, operands: [...operands, ...args.slice(i + 1)] };
      }
      if (!needs) {
        events.push({ kind: "option", option: c });
        continue;
      }
      const rest = chars.slice(j + 1).join("");
      if (rest !== "") {
        events.push({ kind: "option", option: c, argument: rest });
      } else if (i + 1 < args.length) {
        events.push({ kind: "option", option: c, argument: args[++i]! });
      } else {
        events.push({ kind: "missing", option: c });
        return { events, operands };
      }
      break;
    }
  }
  return { events, operands };
}

const U64_MASK = (1n << 64n) - 1n;

/**
 * C `strtoull(text, NULL, 0)` as a `bigint` in `[0, 2^64)`: leading white space, an optional
 * sign (a minus negates modulo 2^64), `0x` for hex, a leading `0` for octal, digits up to the
 * first invalid character; no digits gives 0; overflow gives 2^64 - 1.
 *
 * @example
 * ```ts
 * import { strtoull } from "./e2image_getopt.ts";
 * console.assert(strtoull("0x10") === 16n && strtoull("010") === 8n && strtoull("1M") === 1n);
 * console.assert(strtoull("-1") === (1n << 64n) - 1n && strtoull("junk") === 0n);
 * ```
 */
export function strtoull(text: string): bigint {
  let i = 0;
  while (i < text.length && /[ \t\n\v\f\r]/.test(text[i]!)) i++;
  let negative = false;
  if (text[i] === "+" || text[i] === "-") {
    negative = text[i] === "-";
    i++;
  }
  let base = 10n;
  if (
    text[i] === "0" && (text[i + 1] === "x" || text[i + 1] === "X") &&
    /[0-9a-fA-F]/.test(text[i + 2] ?? "")
  ) {
    base = 16n;
    i += 2;
  } else if (text[i] === "0") {
    base = 8n;
  }
  let value = 0n;
  let overflow = false;
  let any = false;
  for (; i < text.length; i++) {
    const d = parseInt(text[i]!, 36);
    if (Number.isNaN(d) || BigInt(d) >= base) break;
    any = true;
    value = value * base + BigInt(d);
    if (value > U64_MASK) overflow = true;
  }
  if (!any) return 0n;
  if (overflow) return U64_MASK;
  return negative ? (-value) & U64_MASK : value;
}
