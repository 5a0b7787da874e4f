/**
 * e2image `-I`: install the metadata of a normal image back onto a filesystem — every group's
 * inode table, the block and inode bitmaps (bitmap and descriptor checksums recomputed), the
 * primary group descriptors and the primary superblock (write time, kilobytes written and
 * checksum updated), as libext2fs does when e2image closes the filesystem.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { put16, put32, u16, u32 } from "../_internal/bytes.ts";
import { crc16, crc32cUpdate } from "../_internal/crc.ts";
import type { Sink, Source } from "../io/types.ts";
import { E2IMAGE_HEADER_SIZE, parseE2imageHeader } from "./header.ts";

/** Options of {@linkcode installNormalImage}. */
export interface InstallOptions {
  /** The write time to store in the superblock (seconds since the epoch). */
  time: number;
}

/** What {@linkcode installNormalImage} wrote. */
export interface InstallResult {
  /** Bytes written to the device. */
  bytesWritten: number;
}

/** Reads `length` bytes at `offset` into `into` (when given, at least `length` long) or a new buffer. */
function readExact(src: Source, offset: number, length: number, into?: Uint8Array): Uint8Array {
  const b = into ? into.subarray(0, length) : new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = src.readAt(offset + done, b.subarray(done));
    if (n <= 0) {
      throw new CorruptImageError(
        `Cannot read ${src.name}: ${length} bytes at byte 0x${offset.toString(16)} pass its end`,
        {
          format: "e2image",
          offset,
          compat: "Attempt to read block from filesystem resulted in short read",
        },
      );
    }
    done += n;
  }
  return b;
}

function corrupt(message: string, compat: string, offset?: number): CorruptImageError {
  return new CorruptImageError(message, {
    format: "ext",
    structure: "superblock",
    ...(offset !== undefined ? { offset } : {}),
    compat,
  });
}

/**
 * Installs the normal image `image` onto `device` (a file or block device holding the same
 * filesystem). Throws {@linkcode CorruptImageError} (libext2fs's wording in `details.compat`)
 * when the image is not a valid normal image, before anything is written.
 *
 * @example
 * ```ts ignore
 * import { installNormalImage } from "./install.ts";
 * installNormalImage(imageSource, deviceSink, { time: Math.floor(Date.now() / 1000) });
 * ```
 */
export function installNormalImage(
  image: Source,
  device: Sink,
  options: InstallOptions,
): InstallResult {
  const hdr = parseE2imageHeader(readExact(image, 0, E2IMAGE_HEADER_SIZE));
  const bs = hdr.fsBlocksize;
  if (!(bs >= 1024 && bs <= 65536 && (bs & (bs - 1)) === 0)) {
    throw corrupt(
      `Cannot read e2image header: fs_blocksize must be a power of two in 1024..65536, found ${bs} (byte 0xcc)`,
      "The ext2 superblock is corrupt",
      0xcc,
    );
  }
  const sb = readExact(image, bs, 1024);
  const at = (o: number) => bs + o;
  if (u16(sb, 0x38) !== 0xef53) {
    throw corrupt(
      `Cannot read ext superblock: s_magic must be 0xef53 (byte 0x${at(0x38).toString(16)})`,
      "Bad magic number in super-block",
      at(0x38),
    );
  }
  const logBs = u32(sb, 0x18); // s_log_block_size
  if (logBs > 6 || 1024 << logBs !== bs) {
    throw corrupt(
      `Cannot read ext superblock: block size ${
        1024 << Math.min(logBs, 20)
      } does not match the image's ${bs}`,
      "Filesystem has unexpected block size",
      at(0x18),
    );
  }
  const incompat = u32(sb, 0x60); // s_feature_incompat
  const roCompat = u32(sb, 0x64); // s_feature_ro_compat
  const compat = u32(sb, 0x5c); // s_feature_compat
  const is64 = (incompat & 0x80) !== 0;
  const metaBg = (incompat & 0x10) !== 0;
  const metadataCsum = (roCompat & 0x400) !== 0;
  const gdtCsum = metadataCsum || (roCompat & 0x10) !== 0;
  const bigalloc = (roCompat & 0x200) !== 0;
  const blocksCount = u32(sb, 0x04) + (is64 ? u32(sb, 0x150) * 2 ** 32 : 0);
  const firstData = u32(sb, 0x14); // s_first_data_block
  const bpg = u32(sb, 0x20); // s_blocks_per_group
  const cpg = bigalloc ? u32(sb, 0x24) : bpg; // s_clusters_per_group
  const ipg = u32(sb, 0x28); // s_inodes_per_group
  const inodeSize = u16(sb, 0x58) || 128; // s_inode_size
  const descSize = is64 ? u16(sb, 0xfe) : 32; // s_desc_size
  const firstMetaBg = u32(sb, 0x104);
  if (
    bpg < 8 || ipg === 0 || cpg === 0 || cpg % 8 !== 0 || ipg % 8 !== 0 ||
    firstData >= blocksCount || descSize < 32 || descSize > bs || (descSize & (descSize - 1)) ||
    inodeSize < 128 || inodeSize > bs || (inodeSize & (inodeSize - 1))
  ) {
    throw corrupt("Cannot read ext superblock: invalid geometry", "The ext2 superblock is corrupt");
  }
  const groups = Math.ceil((blocksCount - firstData) / bpg);
  const dpb = bs / descSize;
  const descBlocks = Math.ceil(groups / dpb);
  const ipb = Math.ceil(ipg * inodeSize / bs); // inode_blocks_per_group
  const limit = Math.max(image.size, 0);
  if (hdr.offsetInode + groups * ipb * bs > limit || descBlocks * bs + 2 * bs > limit) {
    throw corrupt(
      `Cannot read ${image.name}: its inode tables pass the end of the image`,
      "Attempt to read block from filesystem resulted in short read",
    );
  }
  const desc = readExact(image, 2 * bs, descBlocks * bs);
  const bbBytes = cpg / 8;
  const ibBytes = ipg / 8;
  const blockMap = readExact(image, hdr.offsetBlockmap, groups * bbBytes);
  const inodeMap = readExact(image, hdr.offsetInodemap, groups * ibBytes);
  const uuid = sb.subarray(0x68, 0x78);
  const seed = (incompat & 0x2000) ? u32(sb, 0x270) : crc32cUpdate(0xffffffff, uuid);

  const d = (g: number) => desc.subarray(g * descSize, (g + 1) * descSize);
  const loc = (g: number, lo: number, hi: number) =>
    u32(d(g), lo) + (descSize >= 64 ? u32(d(g), hi) * 2 ** 32 : 0);
  const flags = (g: number) => u16(d(g), 0x12); // bg_flags

  let written = 0;
  const write = (offset: number, data: Uint8Array) => {
    device.writeAt(offset, data);
    written += data.length;
  };

  // 1. Inode tables, group by group, in big batches.
  const batch = Math.max(1, Math.floor((4 << 20) / bs));
  // One buffer for every batch: memory stays at one batch whatever the number of groups.
  const tableBuf = new Uint8Array(Math.min(batch, ipb) * bs);
  for (let g = 0; g < groups; g++) {
    const t = loc(g, 0x08, 0x28); // bg_inode_table
    if (t === 0) {
      throw new CorruptImageError(`Cannot install: group ${g} has no inode table`, {
        format: "ext",
        structure: `group descriptor ${g}`,
        compat: "A block group is missing an inode table",
      });
    }
    for (let j = 0; j < ipb; j += batch) {
      const n = Math.min(batch, ipb - j);
      const chunk = readExact(image, hdr.offsetInode + (g * ipb + j) * bs, n * bs, tableBuf);
      write((t + j) * bs, chunk);
    }
  }

  // 2. Bitmaps with their checksums, then each group's descriptor checksum.
  const lastBits = ((blocksCount - firstData) % bpg) / (bpg / cpg);
  for (let g = 0; g < groups; g++) {
    const desc_ = d(g);
    const f = flags(g);
    let touched = false;
    if (!(gdtCsum && (f & 0x2))) { // BLOCK_UNINIT
      const buf = new Uint8Array(bs).fill(0xff);
      buf.set(blockMap.subarray(g * bbBytes, (g + 1) * bbBytes));
      if (g === groups - 1 && lastBits) {
        for (let j = Math.ceil(lastBits); j < bs * 8; j++) buf[j >> 3]! |= 1 << (j & 7);
      }
      if (metadataCsum) {
        const c = crc32cUpdate(seed, buf.subarray(0, bbBytes));
        put16(desc_, 0x18, c & 0xffff); // bg_block_bitmap_csum_lo
        if (descSize >= 0x3c) put16(desc_, 0x38, c >>> 16); // bg_block_bitmap_csum_hi
      }
      touched = true;
      const b = loc(g, 0x00, 0x20); // bg_block_bitmap
      if (b && b < blocksCount) write(b * bs, buf);
    }
    if (!(gdtCsum && (f & 0x1))) { // INODE_UNINIT
      const buf = new Uint8Array(bs).fill(0xff);
      buf.set(inodeMap.subarray(g * ibBytes, (g + 1) * ibBytes));
      if (metadataCsum) {
        const c = crc32cUpdate(seed, buf.subarray(0, ibBytes));
        put16(desc_, 0x1a, c & 0xffff); // bg_inode_bitmap_csum_lo
        if (descSize >= 0x3c) put16(desc_, 0x3a, c >>> 16); // bg_inode_bitmap_csum_hi
      }
      touched = true;
      const b = loc(g, 0x04, 0x24); // bg_inode_bitmap
      if (b && b < blocksCount) write(b * bs, buf);
    }
    if (touched && gdtCsum) put16(desc_, 0x1e, groupDescCsum(desc_, g)); // bg_checksum
  }

  function groupDescCsum(dd: Uint8Array, g: number): number {
    const gb = new Uint8Array(4);
    put32(gb, 0, g);
    if (metadataCsum) {
      const copy = dd.slice();
      put16(copy, 0x1e, 0);
      return crc32cUpdate(crc32cUpdate(seed, gb), copy) & 0xffff;
    }
    let c = crc16(0xffff, uuid);
    c = crc16(c, gb);
    c = crc16(c, dd.subarray(0, 0x1e));
    if (descSize > 0x20) c = crc16(c, dd.subarray(0x20, descSize));
    return c;
  }

  const dataWritten = written;

  // 3. The primary descriptors (and meta_bg descriptor blocks), as ext2fs_flush does with
  // EXT2_FLAG_MASTER_SB_ONLY.
  const sparse = (roCompat & 0x1) !== 0;
  const sparse2 = (compat & 0x200) !== 0;
  const isPow = (n: number, b: number) => {
    while (n > 1 && n % b === 0) n /= b;
    return n === 1;
  };
  const hasSuper = (g: number) => {
    if (g === 0) return true;
    if (sparse2) return g === u32(sb, 0x24c) || g === u32(sb, 0x250);
    if (g <= 1 || !sparse) return true;
    if (!(g & 1)) return false;
    return isPow(g, 3) || isPow(g, 5) || isPow(g, 7);
  };
  const oldDescBlocks = metaBg ? Math.min(firstMetaBg, descBlocks) : descBlocks;
  const groupFirst = (g: number) => {
    const b = firstData + g * bpg;
    return b === 0 && bs === 1024 ? 1 : b;
  };
  for (let g = 0; g < groups; g++) {
    const gb = groupFirst(g);
    const hs = hasSuper(g);
    const mb = Math.floor(g / dpb);
    if (!metaBg || mb < firstMetaBg) {
      if (g === 0 && hs && oldDescBlocks > 0) {
        write((gb + 1) * bs, desc.subarray(0, oldDescBlocks * bs));
      }
    } else {
      const r = g % dpb;
      if (r === 0 || r === 1 || r === dpb - 1) {
        write((gb + (hs ? 1 : 0)) * bs, desc.subarray(mb * bs, (mb + 1) * bs));
      }
    }
  }

  // 4. The primary superblock.
  const out = sb.slice();
  put32(out, 0x30, options.time % 2 ** 32); // s_wtime
  out[0x274] = Math.floor(options.time / 2 ** 32) & 0xff; // s_wtime_hi
  put16(out, 0x5a, 0); // s_block_group_nr
  const kb = u32(out, 0x178) + u32(out, 0x17c) * 2 ** 32; // s_kbytes_written
  if (kb) {
    const meta = Math.floor((descBlocks + 1) / (bs / 1024));
    const nkb = kb + Math.floor(dataWritten / 1024) + meta;
    put32(out, 0x178, nkb % 2 ** 32);
    put32(out, 0x17c, Math.floor(nkb / 2 ** 32));
  }
  if (metadataCsum) put32(out, 0x3fc, crc32cUpdate(0xffffffff, out.subarray(0, 0x3fc)));
  write(1024, out);
  device.sync?.();
  return { bytesWritten: written };
}
