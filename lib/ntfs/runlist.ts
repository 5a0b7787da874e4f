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

function signedLe(b: Uint8Array, off: number, n: number): number {
  // n ≤ 8 bytes, little-endian two's complement; values past 2^53 are rejected by the caller.
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i]!);
  v = BigInt.asIntN(n * 8, v);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number.NaN;
  }
  return Number(v);
}

/**
 * Decodes the mapping pairs in `b[start, end)` of an attribute record whose first VCN is
 * `lowestVcn`. `base` is the absolute byte offset of `b[0]`, for messages. The running LCN
 * starts at 0 in every attribute record. Stops at a 0x00 header byte or at `end`.
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
  const runs: NtfsRun[] = [];
  let vcn = lowestVcn;
  let lcn = 0;
  let p = start;
  const bad = (why: string, at: number): never => {
    throw new CorruptImageError(
      `Cannot read NTFS runlist: ${why} (byte 0x${(base + at).toString(16)})`,
      { format: "ntfs", structure: "runlist", field: "mapping_pairs", offset: base + at },
    );
  };
  if (end > b.length) end = b.length;
  while (p < end) {
    const h = b[p]!;
    if (h === 0) break;
    const lenBytes = h & 0x0f, lcnBytes = h >> 4;
    if (lenBytes === 0 || lenBytes > 8 || lcnBytes > 8) {
      bad(`invalid mapping pair header 0x${h.toString(16)}`, p);
    }
    if (p + 1 + lenBytes + lcnBytes > end) bad("mapping pair runs past the attribute", p);
    const length = signedLe(b, p + 1, lenBytes);
    if (!(length > 0)) bad(`run length must be positive, found ${length}`, p + 1);
    if (lcnBytes === 0) {
      runs.push({ vcn, lcn: LCN_HOLE, length });
    } else {
      const delta = signedLe(b, p + 1 + lenBytes, lcnBytes);
      lcn += delta;
      if (!Number.isSafeInteger(lcn) || lcn < 0) {
        bad(`run LCN ${lcn} is negative or out of range`, p + 1 + lenBytes);
      }
      runs.push({ vcn, lcn, length });
    }
    vcn += length;
    if (!Number.isSafeInteger(vcn)) bad("VCN overflows", p);
    p += 1 + lenBytes + lcnBytes;
  }
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
