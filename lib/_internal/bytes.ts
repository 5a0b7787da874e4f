/**
 * Bounds-checked little- and big-endian field readers and writers, and checked arithmetic.
 * Every reader throws {@linkcode CorruptImageError} (never a bare `RangeError`) when the field
 * lies outside the buffer, so parsers of hostile input cannot crash on a short buffer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { CorruptImageError } from "../errors.ts";

/** Largest byte offset fsimage handles: 2^53 - 1. */
export const MAX_SAFE_OFFSET: number = Number.MAX_SAFE_INTEGER;

function need(b: Uint8Array, off: number, n: number, what: string): void {
  if (!(off >= 0 && off + n <= b.length && Number.isInteger(off))) {
    throw new CorruptImageError(
      `Cannot read ${what}: ${n}-byte field at 0x${
        off.toString(16)
      } lies outside a ${b.length}-byte buffer`,
    );
  }
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Reads a u8 at `off`. */
export function u8(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 1, what);
  return b[off]!;
}

/** Reads a little-endian u16 at `off`. */
export function u16(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 2, what);
  return b[off]! | (b[off + 1]! << 8);
}

/** Reads a little-endian u32 at `off`. */
export function u32(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 4, what);
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/** Reads a little-endian signed i32 at `off`. */
export function i32(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 4, what);
  return b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
}

/** Reads a little-endian u64 as a BigInt. */
export function u64n(b: Uint8Array, off: number, what = "field"): bigint {
  need(b, off, 8, what);
  return view(b).getBigUint64(off, true);
}

/**
 * Reads a little-endian u64 and narrows it to a number; throws {@linkcode CorruptImageError}
 * when it exceeds 2^53 - 1.
 */
export function u64(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 8, what);
  const lo = u32(b, off), hi = u32(b, off + 4);
  if (hi > 0x1fffff) {
    throw new CorruptImageError(
      `Cannot read ${what}: 64-bit value 0x${hi.toString(16)}${
        lo.toString(16).padStart(8, "0")
      } exceeds 2^53 (byte 0x${off.toString(16)})`,
    );
  }
  return hi * 0x100000000 + lo;
}

/** Reads a big-endian u16 at `off`. */
export function u16be(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 2, what);
  return (b[off]! << 8) | b[off + 1]!;
}

/** Reads a big-endian u32 at `off`. */
export function u32be(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 4, what);
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** Reads a big-endian u64 as a BigInt. */
export function u64beN(b: Uint8Array, off: number, what = "field"): bigint {
  need(b, off, 8, what);
  return view(b).getBigUint64(off, false);
}

/** Reads a big-endian u64 narrowed to a number; throws past 2^53 - 1. */
export function u64be(b: Uint8Array, off: number, what = "field"): number {
  need(b, off, 8, what);
  const hi = u32be(b, off), lo = u32be(b, off + 4);
  if (hi > 0x1fffff) {
    throw new CorruptImageError(
      `Cannot read ${what}: 64-bit value exceeds 2^53 (byte 0x${off.toString(16)})`,
    );
  }
  return hi * 0x100000000 + lo;
}

/** Writes a u16 little-endian. */
export function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}

/** Writes a u32 little-endian. */
export function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

/** Writes a number (≤ 2^53) as u64 little-endian. */
export function put64(b: Uint8Array, off: number, v: number): void {
  put32(b, off, v % 0x100000000);
  put32(b, off + 4, Math.floor(v / 0x100000000));
}

/** Writes a u32 big-endian. */
export function put32be(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** Writes a number (≤ 2^53) or bigint as u64 big-endian. */
export function put64be(b: Uint8Array, off: number, v: number | bigint): void {
  view(b).setBigUint64(off, BigInt(v), false);
}

/** Returns `a * b`, throwing a `RangeError` when the product is not a safe integer. */
export function mulSafe(a: number, b: number): number {
  const r = a * b;
  if (!Number.isSafeInteger(r)) throw new RangeError(`Product ${a} * ${b} exceeds 2^53`);
  return r;
}

/** Returns `a + b`, throwing a `RangeError` when the sum is not a safe integer. */
export function addSafe(a: number, b: number): number {
  const r = a + b;
  if (!Number.isSafeInteger(r)) throw new RangeError(`Sum ${a} + ${b} exceeds 2^53`);
  return r;
}

/** True when `n` is a positive power of two. */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && Number.isInteger(Math.log2(n));
}

let zeros = new Uint8Array(65536);

/** True when every byte of `b` is zero (a native memcmp against a zero buffer). */
export function isZero(b: Uint8Array): boolean {
  if (b.length > zeros.length) zeros = new Uint8Array(Math.max(b.length, zeros.length * 2));
  return Buffer.compare(b, zeros.subarray(0, b.length)) === 0;
}

/** Formats a number as `0x…` hex. */
export function hex(n: number): string {
  return "0x" + n.toString(16);
}
