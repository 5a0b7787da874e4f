/**
 * Table-driven CRCs used by on-disk formats: the reflected CRC-16 (polynomial 0x8005, as in
 * ext4 `uninit_bg` group descriptors) and CRC-32C (Castagnoli, as in ext4 `metadata_csum`).
 *
 * Both functions take and return the raw running register, like libext2fs's `ext2fs_crc16`
 * and `ext2fs_crc32c_le`: no implicit initial value, no final inversion. {@linkcode crc32c}
 * is the conventional one-shot form (initial `~0`, final inversion).
 *
 * @module
 */

function makeTable16(): Uint16Array {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
}

/** Slicing-by-8 tables for CRC-32C: 8 rows of 256 entries. */
function makeTables32c(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i]!;
    for (let r = 1; r < 8; r++) {
      c = (c >>> 8) ^ t[c & 0xff]!;
      t[r * 256 + i] = c >>> 0;
    }
  }
  return t;
}

// Built on first use, so commands that never checksum do not pay for them at startup.
let T16: Uint16Array | undefined;
let T32: Uint32Array | undefined;

/**
 * Continues a reflected CRC-16 (polynomial 0x8005) over `data`, starting from register `crc`.
 * Matches libext2fs's `ext2fs_crc16(crc, buf, len)`.
 *
 * @example
 * ```ts
 * import { crc16 } from "./crc.ts";
 * // CRC-16/ARC check value of "123456789" (initial 0).
 * console.assert(crc16(0, new TextEncoder().encode("123456789")) === 0xbb3d);
 * ```
 */
export function crc16(crc: number, data: Uint8Array): number {
  const t = T16 ??= makeTable16();
  let c = crc & 0xffff;
  for (let i = 0; i < data.length; i++) c = (c >>> 8) ^ t[(c ^ data[i]!) & 0xff]!;
  return c;
}

/**
 * Continues a CRC-32C (Castagnoli, reflected) over `data` from register `crc`, without any
 * final inversion. Matches libext2fs's `ext2fs_crc32c_le(crc, buf, len)`.
 *
 * @example
 * ```ts
 * import { crc32cUpdate } from "./crc.ts";
 * const r = crc32cUpdate(0xffffffff, new TextEncoder().encode("123456789"));
 * console.assert((~r >>> 0) === 0xe3069283);
 * ```
 */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  const T = T32 ??= makeTables32c();
  let c = crc >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  for (; i < end8; i += 8) {
    const lo = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    c = T[7 * 256 + (lo & 0xff)]! ^ T[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      T[5 * 256 + ((lo >>> 16) & 0xff)]! ^ T[4 * 256 + (lo >>> 24)]! ^
      T[3 * 256 + data[i + 4]!]! ^ T[2 * 256 + data[i + 5]!]! ^
      T[256 + data[i + 6]!]! ^ T[data[i + 7]!]!;
  }
  for (; i < n; i++) c = (c >>> 8) ^ T[(c ^ data[i]!) & 0xff]!;
  return c >>> 0;
}

/**
 * The conventional CRC-32C of `data` (initial `~0`, final inversion), as used by iSCSI and
 * `crc32c` utilities.
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc.ts";
 * console.assert(crc32c(new TextEncoder().encode("123456789")) === 0xe3069283);
 * ```
 */
export function crc32c(data: Uint8Array): number {
  return ~crc32cUpdate(0xffffffff, data) >>> 0;
}
