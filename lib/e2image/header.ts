/**
 * The header of e2image's "normal" image format (`struct ext2_image_hdr` of e2fsprogs): 332
 * little-endian bytes at offset 0 of the image, zero-padded to one filesystem block.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { put32, u32 } from "../_internal/bytes.ts";

/** `EXT2_ET_MAGIC_E2IMAGE`: the ext2 error-table base 0x7F2BB700 plus 16. */
export const E2IMAGE_MAGIC = 0x7f2bb710;

/** The text e2image stores in `magic_descriptor`. */
export const E2IMAGE_DESCRIPTOR = "Ext2 Image 1.0";

/** Size in bytes of the encoded header (before padding to a block). */
export const E2IMAGE_HEADER_SIZE = 332;

/** The fields of a normal image header. Strings are stored NUL-padded. */
export interface E2imageHeader {
  /** `magic_descriptor` (16 bytes): "Ext2 Image 1.0". */
  magicDescriptor: string;
  /** `fs_hostname` (64 bytes): the host that made the image. */
  fsHostname: string;
  /** `fs_netaddr` (32 bytes), unused by e2image: zeros. */
  fsNetaddr: Uint8Array;
  /** `fs_netaddr_type`, unused: 0. */
  fsNetaddrType: number;
  /** `fs_device`: st_rdev of the device (0 for a regular file). */
  fsDevice: number;
  /** `fs_device_name` (64 bytes): the device argument as typed, at most 63 bytes. */
  fsDeviceName: string;
  /** `fs_uuid` (16 bytes): the filesystem's s_uuid. */
  fsUuid: Uint8Array;
  /** `fs_blocksize`: the filesystem block size. */
  fsBlocksize: number;
  /** `image_device`: st_dev of the image file. */
  imageDevice: number;
  /** `image_inode`: st_ino of the image file (low 32 bits). */
  imageInode: number;
  /** `image_time`: seconds since the epoch (low 32 bits; the high half sits at byte 252). */
  imageTime: number;
  /** `image_time_hi` (e2fsprogs 1.47.1+; 0 in 1.47.0). */
  imageTimeHi: number;
  /** `offset_super`: byte offset of the superblock in the image. */
  offsetSuper: number;
  /** `offset_inode`: byte offset of the inode tables. */
  offsetInode: number;
  /** `offset_inodemap`: byte offset of the inode bitmap. */
  offsetInodemap: number;
  /** `offset_blockmap`: byte offset of the block bitmap. */
  offsetBlockmap: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");

function putString(b: Uint8Array, off: number, len: number, s: string): void {
  const bytes = enc.encode(s).subarray(0, len - 1);
  b.set(bytes, off);
}

function getString(b: Uint8Array, off: number, len: number): string {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return dec.decode(nul < 0 ? f : f.subarray(0, nul));
}

/**
 * Parses a normal image header from at least 332 bytes. Only the magic number is required to
 * be right (that is all libext2fs checks); offsets are validated by the caller against the
 * image size.
 *
 * @example
 * ```ts
 * import { encodeE2imageHeader, parseE2imageHeader } from "./header.ts";
 * const b = encodeE2imageHeader({ fsBlocksize: 4096, offsetSuper: 4096 });
 * console.assert(parseE2imageHeader(b).offsetSuper === 4096);
 * ```
 */
export function parseE2imageHeader(bytes: Uint8Array): E2imageHeader {
  if (bytes.length < E2IMAGE_HEADER_SIZE) {
    throw new CorruptImageError(
      `Cannot read e2image header: need ${E2IMAGE_HEADER_SIZE} bytes, found ${bytes.length}`,
      { format: "e2image", structure: "header", offset: 0 },
    );
  }
  const magic = u32(bytes, 0, "magic_number");
  if (magic !== E2IMAGE_MAGIC) {
    throw new CorruptImageError(
      `Cannot read e2image header: magic_number must be 0x7f2bb710, found 0x${
        magic.toString(16)
      } (byte 0x0)`,
      {
        format: "e2image",
        structure: "header",
        field: "magic_number",
        offset: 0,
        expected: "0x7f2bb710",
        actual: `0x${magic.toString(16)}`,
        compat: "Wrong magic number for Ext2 Image Header",
      },
    );
  }
  return {
    magicDescriptor: getString(bytes, 4, 16),
    fsHostname: getString(bytes, 20, 64),
    fsNetaddr: bytes.slice(84, 116),
    fsNetaddrType: u32(bytes, 116),
    fsDevice: u32(bytes, 120),
    fsDeviceName: getString(bytes, 124, 64),
    fsUuid: bytes.slice(188, 204),
    fsBlocksize: u32(bytes, 204),
    imageDevice: u32(bytes, 240),
    imageInode: u32(bytes, 244),
    imageTime: u32(bytes, 248),
    imageTimeHi: u32(bytes, 252),
    offsetSuper: u32(bytes, 284),
    offsetInode: u32(bytes, 288),
    offsetInodemap: u32(bytes, 292),
    offsetBlockmap: u32(bytes, 296),
  };
}

/**
 * Encodes a header into 332 bytes (pad it to the block size when writing). Missing fields are
 * zero, `magicDescriptor` defaults to "Ext2 Image 1.0"; numbers are stored modulo 2^32, as
 * e2image's u32 fields truncate them.
 *
 * @example
 * ```ts
 * import { E2IMAGE_MAGIC, encodeE2imageHeader } from "./header.ts";
 * const b = encodeE2imageHeader({ fsHostname: "vm" });
 * console.assert(new DataView(b.buffer).getUint32(0, true) === E2IMAGE_MAGIC && b[20] === 0x76);
 * ```
 */
export function encodeE2imageHeader(header: Partial<E2imageHeader>): Uint8Array {
  const b = new Uint8Array(E2IMAGE_HEADER_SIZE);
  const n = (v: number | undefined) => (v ?? 0) % 2 ** 32;
  put32(b, 0, E2IMAGE_MAGIC); // magic_number
  putString(b, 4, 16, header.magicDescriptor ?? E2IMAGE_DESCRIPTOR); // magic_descriptor
  putString(b, 20, 65, header.fsHostname ?? ""); // fs_hostname (may fill all 64 bytes)
  if (header.fsNetaddr) b.set(header.fsNetaddr.subarray(0, 32), 84); // fs_netaddr
  put32(b, 116, n(header.fsNetaddrType)); // fs_netaddr_type
  put32(b, 120, n(header.fsDevice)); // fs_device
  putString(b, 124, 64, header.fsDeviceName ?? ""); // fs_device_name
  if (header.fsUuid) b.set(header.fsUuid.subarray(0, 16), 188); // fs_uuid
  put32(b, 204, n(header.fsBlocksize)); // fs_blocksize
  put32(b, 240, n(header.imageDevice)); // image_device
  put32(b, 244, n(header.imageInode)); // image_inode
  put32(b, 248, n(header.imageTime)); // image_time
  put32(b, 252, n(header.imageTimeHi)); // image_time_hi
  put32(b, 284, n(header.offsetSuper)); // offset_super
  put32(b, 288, n(header.offsetInode)); // offset_inode
  put32(b, 292, n(header.offsetInodemap)); // offset_inodemap
  put32(b, 296, n(header.offsetBlockmap)); // offset_blockmap
  return b;
}
