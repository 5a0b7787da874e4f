/**
 * The vocabulary shared by the ext and NTFS privacy audits and scrubbers: what kinds of
 * identifying content an image can still hold ({@linkcode PrivacyKind}), one finding
 * ({@linkcode PrivacyFinding}), a collector that counts and keeps a few samples
 * ({@linkcode FindingCollector}), and the order-preserving name generator both scrubbers use
 * ({@linkcode scrambledName}).
 *
 * @module
 */

/** The kinds of content an audit reports; the same ids count what a scrub changed. */
export type PrivacyKind =
  | "names"
  | "deleted-names"
  | "deleted-inodes"
  | "inline-data"
  | "xattr-names"
  | "xattr-values"
  | "symlink-targets"
  | "journal"
  | "label"
  | "last-mounted"
  | "uuid"
  | "dir-slack"
  | "record-slack"
  | "file-data"
  | "free-space";

/** One-line descriptions of each kind, for reports. */
export const PRIVACY_KIND_TEXT: Readonly<Record<PrivacyKind, string>> = {
  "names": "file and directory names",
  "deleted-names": "names of deleted directory entries",
  "deleted-inodes": "deleted inodes or MFT records that still hold content",
  "inline-data": "small file contents stored inside metadata (inline data, resident $DATA)",
  "xattr-names": "extended attribute or named stream names",
  "xattr-values": "extended attribute or named stream values",
  "symlink-targets": "symbolic link targets",
  "journal": "journal contents ($LogFile / jbd2 blocks)",
  "label": "volume label",
  "last-mounted": "last mounted path or mount options",
  "uuid": "UUIDs and serial numbers",
  "dir-slack": "stale bytes in directory and index blocks (slack)",
  "record-slack": "stale bytes past the end of MFT records",
  "file-data": "file data blocks present in the image",
  "free-space": "non-zero unallocated blocks (contents of deleted files)",
};

/**
 * How much a finding matters: `leak` content identifies people or data; `info` identifies only
 * the volume (UUIDs, serial numbers) and does not make an audit fail by default.
 */
export type PrivacySeverity = "leak" | "info";

/** One kind of identifying content found in an image. */
export interface PrivacyFinding {
  /** What was found. */
  kind: PrivacyKind;
  /** `leak` or `info` (see {@linkcode PrivacySeverity}). */
  severity: PrivacySeverity;
  /** How many occurrences (names, blocks, records, values). */
  count: number;
  /** Up to {@linkcode MAX_SAMPLES} distinct examples, printable. */
  samples: string[];
}

/** Most samples kept per finding. */
export const MAX_SAMPLES = 5;

/** Longest sample kept, in characters. */
export const MAX_SAMPLE_LENGTH = 64;

/** Makes `s` printable and short: control characters become `\xNN`, long strings are cut. */
export function printableSample(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += c < 0x20 || c === 0x7f ? `\\x${c.toString(16).padStart(2, "0")}` : ch;
    if (out.length >= MAX_SAMPLE_LENGTH) return out.slice(0, MAX_SAMPLE_LENGTH) + "…";
  }
  return out;
}

/**
 * Counts findings per kind and keeps a few distinct samples of each.
 *
 * @example
 * ```ts
 * import { FindingCollector } from "./privacy.ts";
 * const c = new FindingCollector();
 * c.add("names", 1, "secret.txt");
 * c.add("uuid", 1, "5e1f...", "info");
 * console.assert(c.findings().length === 2 && c.leaks() === 1);
 * ```
 */
export class FindingCollector {
  #map = new Map<PrivacyKind, PrivacyFinding>();

  /** Adds `count` occurrences of `kind`, with an optional sample. */
  add(kind: PrivacyKind, count = 1, sample?: string, severity: PrivacySeverity = "leak"): void {
    if (count <= 0) return;
    let f = this.#map.get(kind);
    if (!f) {
      f = { kind, severity, count: 0, samples: [] };
      this.#map.set(kind, f);
    }
    f.count += count;
    if (sample !== undefined && f.samples.length < MAX_SAMPLES) {
      const p = printableSample(sample);
      if (!f.samples.includes(p)) f.samples.push(p);
    }
  }

  /** The findings, in a stable order (the order of {@linkcode PRIVACY_KIND_TEXT}). */
  findings(): PrivacyFinding[] {
    const order = Object.keys(PRIVACY_KIND_TEXT) as PrivacyKind[];
    return order.flatMap((k) => {
      const f = this.#map.get(k);
      return f ? [{ ...f, samples: [...f.samples] }] : [];
    });
  }

  /** The number of `leak` findings (kinds, not occurrences). */
  leaks(): number {
    let n = 0;
    for (const f of this.#map.values()) if (f.severity === "leak") n++;
    return n;
  }

  /** The count recorded for `kind` (0 when none). */
  count(kind: PrivacyKind): number {
    return this.#map.get(kind)?.count ?? 0;
  }
}

/**
 * The `id`-th scrambled name of `length` characters: uppercase letters A–Z written as a
 * big-endian base-26 number, so names of one length sort in the order of their ids. Ids past
 * 26^length wrap around (the caller counts that as a collision).
 *
 * @example
 * ```ts
 * import { scrambledName } from "./privacy.ts";
 * console.assert(scrambledName(0, 3) === "AAA" && scrambledName(27, 3) === "ABB");
 * ```
 */
export function scrambledName(id: number, length: number): string {
  const out = new Array<string>(length).fill("A");
  let x = id;
  for (let i = length - 1; i >= 0 && x > 0; i--) {
    out[i] = String.fromCharCode(0x41 + (x % 26));
    x = Math.floor(x / 26);
  }
  return out.join("");
}

/** True when every byte of `name` is an uppercase ASCII letter (a scrambled name). */
export function looksScrambled(name: Uint8Array | string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = typeof name === "string" ? name.charCodeAt(i) : name[i]!;
    if (c < 0x41 || c > 0x5a) return false;
  }
  return true;
}

/** Writes back into the image being scrubbed. */
export interface PrivacyWriter {
  /** Writes all of `data` at byte `offset`. */
  writeAt(offset: number, data: Uint8Array): void;
}

/**
 * The longest run of printable ASCII (at least 4 characters, at most 64) in `b`, as a sample of
 * what a finding holds; "" when there is none. With `stride` 2 the bytes are read as UTF-16LE
 * code units, at both alignments.
 *
 * @example
 * ```ts
 * import { printableRun } from "./privacy.ts";
 * console.assert(printableRun(new TextEncoder().encode("\x01\x02secret\x00ab")) === "secret");
 * ```
 */
export function printableRun(b: Uint8Array, stride: 1 | 2 = 1): string {
  let best = "";
  for (let start = 0; start < stride; start++) {
    let cur = "";
    for (let i = start; i + stride - 1 < b.length && best.length < 64; i += stride) {
      const c = stride === 1 ? b[i]! : b[i]! | (b[i + 1]! << 8);
      if (c >= 0x20 && c < 0x7f) cur += String.fromCharCode(c);
      else {
        if (cur.length > best.length) best = cur;
        cur = "";
      }
    }
    if (cur.length > best.length) best = cur;
  }
  return best.length >= 4 ? best : "";
}
