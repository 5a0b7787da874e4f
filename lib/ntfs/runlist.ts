/**
 * NTFS runlists ("mapping pairs"): the compressed list of (length, LCN delta) pairs that maps
 * a non-resident attribute's virtual clusters to logical clusters.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";

/** A run: `length` clusters from virtual cluster `vcn`, at logical cluster `lcn` or a hole. */
export interface NtfsRun {
  /** First virtual cluster of the run. */
  vcn: number;
  /** First logical cluster, or -1 for a sparse hole (LCN_HOLE). */
  lcn: number;
  /** Number of clusters, > 0. */
  length: number;
}

/** The LCN of a sparse hole. */
export const LCN_HOLE: -1 = -1;

/** Reads `n` bytes (1..15) as libntfs does: sign from the top byte, 64-bit wrapping. */
function signedLe(b: Uint8Array, off: number, n: number): bigint {
  let v = BigInt.asIntN(8, BigInt(b[off + n - 1]!));
  for (let i = n - 2; i >= 0; i--) v = BigInt.asIntN(64, (v << 8n) + BigInt(b[off + i]!));
  return v;
}

/**
 * Decodes the mapping pairs in `b[start, end)` of an attribute record whose first VCN is
 * `lowestVcn`, with libntfs's rules (ntfs_mapping_pairs_decompress): the running LCN starts at
 * 0 in every attribute record; a run without LCN bytes, or whose LCN is -1, is a sparse hole;
 * zero-length holes are dropped; a negative length, an LCN below -1, a zero-length real run, a
 * pair past `end` or a missing 0x00 terminator inside `end` are corrupt. `base` is the
 * absolute byte offset of `b[0]`, for messages.
 *
 * @example
 * ```ts
 * import { decodeRunlist } from "./runlist.ts";
 * // 0x21: 1 length byte, 2 LCN bytes: 8 clusters at LCN 0x1234; then a 4-cluster hole.
 * const runs = decodeRunlist(new Uint8Array([0x21, 8, 0x34, 0x12, 0x01, 4, 0]), 0, 7, 0);
 * console.assert(runs.length === 2 && runs[0]!.lcn === 0x1234 && runs[1]!.lcn === -1);
 * ```
 */
export function decodeRunlist(
  b: Uint8Array,
  start: number,
  end: number,
  lowestVcn: number,
  base = 0,
): NtfsRun[] {
  return decodeRunlistFast(b, start, end, lowestVcn, base) ??
    decodeRunlistExact(b, start, end, lowestVcn, base);
}

function badPair(why: string, at: number, base: number): never {
  throw new CorruptImageError(
    `Cannot read NTFS runlist: ${why} (byte 0x${(base + at).toString(16)})`,
    { format: "ntfs", structure: "runlist", field: "mapping_pairs", offset: base + at },
  );
}

/** Reads `n` bytes (1..6) as a signed little-endian number: exact, as `signedLe`. */
function signedLeSmall(b: Uint8Array, off: number, n: number): number {
  let v = (b[off + n - 1]! << 24) >> 24; // sign from the top byte
  for (let i = n - 2; i >= 0; i--) v = v * 256 + b[off + i]!;
  return v;
}

/**
 * The common case of {@linkcode decodeRunlist} in plain numbers: every field of at most 6 bytes
 * (48 bits), so no value leaves the exact range and nothing wraps. Returns undefined (having
 * thrown nothing) at the first wider field; {@linkcode decodeRunlistExact} then decodes the
 * whole list again with BigInts. Same runs, same errors, in the same order.
 */
function decodeRunlistFast(
  b: Uint8Array,
  start: number,
  end: number,
  lowestVcn: number,
  base: number,
): NtfsRun[] | undefined {
  const runs: NtfsRun[] = [];
  let vcn = lowestVcn;
  let lcn = 0;
  let p = start;
  if (end > b.length) end = b.length;
  const max = Number.MAX_SAFE_INTEGER;
  for (let guard = 0; p < end && b[p] !== 0; guard++) {
    if (guard > b.length) badPair("too many mapping pairs", p, base);
    const h = b[p]!;
    const lenBytes = h & 0x0f, lcnBytes = h >> 4;
    if (lenBytes > 6 || lcnBytes > 6) return undefined;
    if (lenBytes === 0) badPair("missing length in a mapping pair", p, base);
    if (p + lenBytes >= end) badPair("mapping pair runs past the attribute", p, base);
    const length = signedLeSmall(b, p + 1, lenBytes);
    if (length < 0) badPair(`run length must not be negative, found ${length}`, p + 1, base);
    let runLcn = -1;
    if (lcnBytes) {
      if (p + lenBytes + lcnBytes >= end) badPair("mapping pair runs past the attribute", p, base);
      // lcn is in [-1, 2^53) here and the delta below 2^47: the sum cannot wrap, and where it
      // is inexact (past 2^53) it is rejected below, as the exact sum would be.
      lcn = lcn + signedLeSmall(b, p + 1 + lenBytes, lcnBytes);
      if (lcn < -1) badPair(`run LCN ${lcn} is below -1`, p + 1 + lenBytes, base);
      if (lcn !== -1 && length === 0) badPair("zero-length run", p, base);
      runLcn = lcn;
    }
    if (length > 0) {
      if (length > max || vcn + length > max || runLcn > max) badPair("run out of range", p, base);
      runs.push({ vcn, lcn: runLcn, length });
    }
    vcn += length;
    p += 1 + lenBytes + lcnBytes;
  }
  if (p >= end) badPair("mapping pairs array has no terminator inside the attribute", p, base);
  return runs;
}

/** {@linkcode decodeRunlist} with 64-bit BigInt arithmetic, for fields wider than 6 bytes. */
function decodeRunlistExact(
  b: Uint8Array,
  start: number,
  end: number,
  lowestVcn: number,
  base: number,
): NtfsRun[] {
  const runs: NtfsRun[] = [];
  let vcn = BigInt(lowestVcn);
  let lcn = 0n;
  let p = start;
  const bad = (why: string, at: number): never => {
    throw new CorruptImageError(
      `Cannot read NTFS runlist: ${why} (byte 0x${(base + at).toString(16)})`,
      { format: "ntfs", structure: "runlist", field: "mapping_pairs", offset: base + at },
    );
  };
  if (end > b.length) end = b.length;
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  for (let guard = 0; p < end && b[p] !== 0; guard++) {
    if (guard > b.length) bad("too many mapping pairs", p);
    const h = b[p]!;
    const lenBytes = h & 0x0f, lcnBytes = h >> 4;
    if (lenBytes === 0) bad("missing length in a mapping pair", p);
    if (p + lenBytes >= end) bad("mapping pair runs past the attribute", p);
    const length = signedLe(b, p + 1, lenBytes);
    if (length < 0n) bad(`run length must not be negative, found ${length}`, p + 1);
    let runLcn = -1n;
    if (lcnBytes) {
      if (p + lenBytes + lcnBytes >= end) bad("mapping pair runs past the attribute", p);
      lcn = BigInt.asIntN(64, lcn + signedLe(b, p + 1 + lenBytes, lcnBytes));
      if (lcn < -1n) bad(`run LCN ${lcn} is below -1`, p + 1 + lenBytes);
      if (lcn !== -1n && length === 0n) bad("zero-length run", p);
      runLcn = lcn;
    }
    if (length > 0n) {
      if (length > max || vcn + length > max || runLcn > max) bad("run out of range", p);
      runs.push({ vcn: Number(vcn), lcn: Number(runLcn), length: Number(length) });
    }
    vcn += length;
    p += 1 + lenBytes + lcnBytes;
  }
  if (p >= end) bad("mapping pairs array has no terminator inside the attribute", p);
  return runs;
}

/**
 * Encodes runs (sorted by VCN, contiguous from `runs[0].vcn`) as mapping pairs, with the
 * shortest byte counts, ended by a 0x00 byte.
 */
export function encodeRunlist(runs: readonly NtfsRun[]): Uint8Array {
  const out: number[] = [];
  let prev = 0;
  const bytesOf = (v: bigint): number[] => {
    const r: number[] = [];
    for (;;) {
      r.push(Number(v & 0xffn));
      const rest = v >> 8n;
      const signBit = (r[r.length - 1]! & 0x80) !== 0;
      if ((rest === 0n && !signBit) || (rest === -1n && signBit)) break;
      v = rest;
    }
    return r;
  };
  for (const r of runs) {
    const len = bytesOf(BigInt(r.length));
    const lcn = r.lcn === LCN_HOLE ? [] : bytesOf(BigInt(r.lcn - prev));
    if (r.lcn !== LCN_HOLE) prev = r.lcn;
    out.push((lcn.length << 4) | len.length, ...len, ...lcn);
  }
  out.push(0);
  return new Uint8Array(out);
}
