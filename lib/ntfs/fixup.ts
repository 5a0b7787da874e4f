/**
 * Update sequence arrays (multi-sector transfer protection) of FILE, INDX and RCRD/RSTR
 * records: the last word of every 512-byte stride is replaced on disk by the update sequence
 * number, and the original words are kept in the array.
 *
 * @module
 */
import { u16 } from "../_internal/bytes.ts";

/** The stride protected by one update sequence entry, whatever the sector size. */
export const NTFS_BLOCK_SIZE = 512;

/** The outcome of {@linkcode undoFixups}. */
export type FixupResult =
  /** The record was intact; the original words are back in place. */
  | "ok"
  /** usa_ofs/usa_count do not describe a valid array for this record size. */
  | "invalid"
  /** A stride's last word does not match the USN (a torn write); nothing was changed. */
  | "torn";

/** Reads and checks usa_ofs/usa_count (0x04/0x06); returns them, or undefined if invalid. */
function usaOf(rec: Uint8Array): { ofs: number; count: number } | undefined {
  const size = rec.length;
  if (size < NTFS_BLOCK_SIZE || size % NTFS_BLOCK_SIZE !== 0) return undefined;
  const ofs = u16(rec, 4); // usa_ofs
  const count = u16(rec, 6); // usa_count
  if ((ofs & 1) !== 0 || ofs < 8 || count !== size / NTFS_BLOCK_SIZE + 1) return undefined;
  if (ofs + 2 * count > NTFS_BLOCK_SIZE - 2) return undefined;
  return { ofs, count };
}

/**
 * Undoes the fixups of a protected record in place (the record is exactly `rec.length`
 * bytes). Does not touch the buffer unless every stride checks out.
 *
 * @example
 * ```ts
 * import { protectFixups, undoFixups } from "./fixup.ts";
 * const rec = new Uint8Array(1024);
 * rec.set([0x46, 0x49, 0x4c, 0x45, 0x30, 0, 3, 0]);
 * rec[510] = 0xaa;
 * protectFixups(rec);
 * console.assert(rec[510] !== 0xaa && undoFixups(rec) === "ok" && rec[510] === 0xaa);
 * ```
 */
export function undoFixups(rec: Uint8Array): FixupResult {
  const usa = usaOf(rec);
  if (!usa) return "invalid";
  const usn0 = rec[usa.ofs]!, usn1 = rec[usa.ofs + 1]!;
  for (let i = 1; i < usa.count; i++) {
    const end = i * NTFS_BLOCK_SIZE - 2;
    if (rec[end] !== usn0 || rec[end + 1] !== usn1) return "torn";
  }
  for (let i = 1; i < usa.count; i++) {
    const end = i * NTFS_BLOCK_SIZE - 2;
    rec[end] = rec[usa.ofs + 2 * i]!;
    rec[end + 1] = rec[usa.ofs + 2 * i + 1]!;
  }
  return "ok";
}

/**
 * Applies the fixups before a write, as libntfs does: increments the update sequence number
 * (0 and 0xFFFF become 1), saves each stride's last word into the array and writes the number
 * there. Returns false (and changes nothing) when the array is invalid.
 */
export function protectFixups(rec: Uint8Array): boolean {
  const usa = usaOf(rec);
  if (!usa) return false;
  let usn = u16(rec, usa.ofs) + 1;
  if (usn === 0xffff || usn === 0x10000 || usn === 0) usn = 1;
  rec[usa.ofs] = usn & 0xff;
  rec[usa.ofs + 1] = usn >> 8;
  for (let i = 1; i < usa.count; i++) {
    const end = i * NTFS_BLOCK_SIZE - 2;
    rec[usa.ofs + 2 * i] = rec[end]!;
    rec[usa.ofs + 2 * i + 1] = rec[end + 1]!;
    rec[end] = usn & 0xff;
    rec[end + 1] = usn >> 8;
  }
  return true;
}

/**
 * libntfs's log line for a torn record (without the errno suffix), naming the first stride
 * whose last word is not the update sequence number; undefined when the record is not torn.
 */
export function describeTornRecord(rec: Uint8Array): string | undefined {
  const usa = usaOf(rec);
  if (!usa) return undefined;
  const usn = u16(rec, usa.ofs);
  for (let i = 1; i < usa.count; i++) {
    const data = u16(rec, i * NTFS_BLOCK_SIZE - 2);
    if (data !== usn) {
      const magic = (rec[0]! | (rec[1]! << 8) | (rec[2]! << 16) | (rec[3]! << 24)) >>> 0;
      return `Incomplete multi-sector transfer: magic: 0x${
        magic.toString(16).padStart(8, "0")
      }  size: ${rec.length}  usa_ofs: ${usa.ofs}  usa_count: ${
        usa.count - i
      }  data: ${data}  usn: ${usn}`;
    }
  }
  return undefined;
}

/**
 * libntfs's log line (without the errno suffix) for a record whose update sequence array is
 * invalid, as its mount-time reads print it; undefined when the array is valid.
 */
export function describeInvalidUsa(rec: Uint8Array): string | undefined {
  if (usaOf(rec)) return undefined;
  const magic =
    ((rec[0] ?? 0) | ((rec[1] ?? 0) << 8) | ((rec[2] ?? 0) << 16) | ((rec[3] ?? 0) << 24)) >>>
    0;
  return `ntfs_mst_post_read_fixup_warn: magic: 0x${
    magic.toString(16).padStart(8, "0")
  }  size: ${rec.length}   usa_ofs: ${rec.length >= 8 ? u16(rec, 4) : 0}  usa_count: ${
    rec.length >= 8 ? u16(rec, 6) : 0
  }`;
}
