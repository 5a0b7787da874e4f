/**
 * The writer of e2image's "normal" image: a header block, the superblock, the group
 * descriptors, every group's full inode table, then the block and inode bitmaps, each part
 * padded to a block (e2image-notes §9.2). It reads only those metadata blocks, in large
 * batches, and leaves all-zero inode-table blocks as holes in a file.
 *
 * The volume is described structurally ({@linkcode NormalImageVolume}), so this module does not
 * depend on the ext module: lib/ext's `ExtVolume` satisfies the interface as is.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { isZero } from "../_internal/bytes.ts";
import type { Sink, Source } from "../io/types.ts";
import { E2IMAGE_HEADER_SIZE, type E2imageHeader, encodeE2imageHeader } from "./header.ts";

/** What the writer needs of an opened ext filesystem (lib/ext's `ExtVolume` fits). */
export interface NormalImageVolume {
  /** The filesystem's bytes. */
  readonly source: Source;
  /** Block size in bytes. */
  readonly blockSize: number;
  /** s_blocks_count. */
  readonly blocksCount: number;
  /** s_first_data_block. */
  readonly firstDataBlock: number;
  /** Number of block groups. */
  readonly groupCount: number;
  /** Blocks of one group's inode table. */
  readonly inodeBlocksPerGroup: number;
  /** The group descriptors (only the inode table location is used). */
  readonly groups: readonly { readonly inodeTable: number }[];
  /** The 1024 superblock bytes as on disk. */
  superblockBytes(): Uint8Array;
  /** The descriptor blocks as on disk, gathered in order. */
  descriptorBytes(): Uint8Array;
  /** Group `g`'s block bitmap as libext2fs holds it in memory (clusters per group / 8 bytes). */
  blockBitmap(group: number): Uint8Array;
  /** Group `g`'s inode bitmap as libext2fs holds it in memory (inodes per group / 8 bytes). */
  inodeBitmap(group: number): Uint8Array;
}

/** The header fields that come from the host rather than from the filesystem. */
export interface NormalImageHostInfo {
  /** gethostname(): at most 64 bytes. */
  hostname?: string;
  /** The device argument as typed. */
  deviceName?: string;
  /** st_rdev of the device (0 for a file). */
  fsDevice?: number;
  /** st_dev of the image file. */
  imageDevice?: number;
  /** st_ino of the image file. */
  imageInode?: number;
  /** Seconds since the epoch. */
  time?: number;
}

/** Options of {@linkcode writeNormalImage}. */
export interface WriteNormalImageOptions {
  /** Host fields of the header. */
  host?: NormalImageHostInfo;
  /**
   * e2image `-n`: the header is not written (it stays a zero block); each of the two header
   * writes e2image would make is reported through `onSkippedHeaderWrite`. Everything else is
   * written, as e2image does.
   */
  noHeader?: boolean;
  /** Called for each header write skipped under `noHeader`. */
  onSkippedHeaderWrite?: () => void;
  /** Bytes per read batch; default 4 MiB. */
  bufferSize?: number;
}

/** Where the parts of a normal image lie (byte offsets), as stored in its header. */
export interface NormalImageLayout {
  /** offset_super. */
  offsetSuper: number;
  /** offset_inode. */
  offsetInode: number;
  /** offset_blockmap. */
  offsetBlockmap: number;
  /** offset_inodemap. */
  offsetInodemap: number;
  /** Total length of the image. */
  size: number;
}

/**
 * Computes the layout of the normal image of a volume.
 *
 * @example
 * ```ts
 * import { normalImageLayout } from "./normal.ts";
 * const l = normalImageLayout({ blockSize: 1024, descBlocks: 1, groupCount: 4,
 *   inodeBlocksPerGroup: 512, clustersPerGroup: 8192, inodesPerGroup: 2048 });
 * console.assert(l.offsetInode === 3072 && l.offsetBlockmap === 2100224 && l.size === 2105344);
 * ```
 */
export function normalImageLayout(v: {
  blockSize: number;
  descBlocks: number;
  groupCount: number;
  inodeBlocksPerGroup: number;
  clustersPerGroup: number;
  inodesPerGroup: number;
}): NormalImageLayout {
  const bs = v.blockSize;
  const pad = (n: number) => Math.ceil(n / bs) * bs;
  const offsetSuper = bs;
  const offsetInode = (2 + v.descBlocks) * bs;
  const offsetBlockmap = offsetInode + v.groupCount * v.inodeBlocksPerGroup * bs;
  const offsetInodemap = offsetBlockmap + pad(v.groupCount * v.clustersPerGroup / 8);
  const size = offsetInodemap + pad(v.groupCount * v.inodesPerGroup / 8);
  return { offsetSuper, offsetInode, offsetBlockmap, offsetInodemap, size };
}

function readAll(source: Source, offset: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) {
    const n = source.readAt(offset + done, buf.subarray(done));
    if (n <= 0) {
      buf.fill(0, done); // libext2fs's unix_io zero-fills a short read past the end
      return;
    }
    done += n;
  }
}

/**
 * Writes the normal image of `volume` to `sink` and returns its layout. A file sink gets holes
 * for all-zero inode-table blocks and the header last (so an interrupted run never leaves an
 * image that looks complete); a stream gets every byte in order.
 *
 * Throws {@linkcode CorruptImageError} (with libext2fs's wording in `details.compat`) for a
 * group whose inode table is missing or lies outside the filesystem.
 *
 * @example
 * ```ts ignore
 * import { writeNormalImage } from "./normal.ts";
 * writeNormalImage(volume, sink, { host: { deviceName: "fs.img", time: 0 } });
 * ```
 */
export function writeNormalImage(
  volume: NormalImageVolume,
  sink: Sink,
  options: WriteNormalImageOptions = {},
): NormalImageLayout {
  const bs = volume.blockSize;
  const desc = volume.descriptorBytes();
  const descBlocks = Math.ceil(desc.length / bs);
  const groups = volume.groupCount;
  const ipb = volume.inodeBlocksPerGroup;
  const bb0 = groups > 0 ? volume.blockBitmap(0).length : 0;
  const ib0 = groups > 0 ? volume.inodeBitmap(0).length : 0;
  const layout = normalImageLayout({
    blockSize: bs,
    descBlocks,
    groupCount: groups,
    inodeBlocksPerGroup: ipb,
    clustersPerGroup: bb0 * 8,
    inodesPerGroup: ib0 * 8,
  });
  // Check every inode table before writing anything.
  for (let g = 0; g < groups; g++) {
    const t = volume.groups[g]?.inodeTable ?? 0;
    if (t === 0) {
      throw new CorruptImageError(`Cannot write the inode table: group ${g} has none`, {
        format: "ext",
        structure: `group descriptor ${g}`,
        field: "bg_inode_table",
        compat: "A block group is missing an inode table",
      });
    }
    if (t < volume.firstDataBlock || t + ipb - 1 >= volume.blocksCount) {
      throw new CorruptImageError(
        `Cannot write the inode table: group ${g}'s table at block ${t} lies outside the filesystem`,
        {
          format: "ext",
          structure: `group descriptor ${g}`,
          field: "bg_inode_table",
          actual: String(t),
          compat: "Corrupt group descriptor: bad block for inode table",
        },
      );
    }
  }
  const stream = sink.kind === "stream";
  let pos = 0; // stream: bytes emitted so far
  const zeros = new Uint8Array(bs);
  const put = (offset: number, data: Uint8Array) => {
    if (stream) {
      while (pos < offset) {
        const n = Math.min(bs, offset - pos);
        sink.writeAt(pos, zeros.subarray(0, n));
        pos += n;
      }
      sink.writeAt(offset, data);
      pos = offset + data.length;
    } else sink.writeAt(offset, data);
  };
  const header = () => {
    if (options.noHeader) {
      options.onSkippedHeaderWrite?.();
      options.onSkippedHeaderWrite?.();
      if (stream) put(0, new Uint8Array(bs));
      return;
    }
    const sb = volume.superblockBytes();
    const h: Partial<E2imageHeader> = {
      fsHostname: options.host?.hostname ?? "",
      fsDeviceName: options.host?.deviceName ?? "",
      fsDevice: options.host?.fsDevice ?? 0,
      fsUuid: sb.subarray(0x68, 0x78), // s_uuid
      fsBlocksize: bs,
      imageDevice: options.host?.imageDevice ?? 0,
      imageInode: options.host?.imageInode ?? 0,
      imageTime: options.host?.time ?? 0,
      offsetSuper: layout.offsetSuper,
      offsetInode: layout.offsetInode,
      offsetInodemap: layout.offsetInodemap,
      offsetBlockmap: layout.offsetBlockmap,
    };
    const block = new Uint8Array(bs);
    block.set(encodeE2imageHeader(h).subarray(0, Math.min(E2IMAGE_HEADER_SIZE, bs)));
    put(0, block);
  };

  if (stream) header();
  // Superblock, zero-padded to a block.
  const sbBlock = new Uint8Array(bs);
  sbBlock.set(volume.superblockBytes().subarray(0, Math.min(1024, bs)));
  put(layout.offsetSuper, sbBlock);
  // Descriptors.
  const descBuf = new Uint8Array(descBlocks * bs);
  descBuf.set(desc);
  put(layout.offsetSuper + bs, descBuf);
  // Inode tables: every group's full table, zero blocks as holes in a file.
  const batch = Math.max(1, Math.floor((options.bufferSize ?? 4 << 20) / bs));
  const buf = new Uint8Array(Math.min(batch, Math.max(1, ipb)) * bs);
  let out = layout.offsetInode;
  for (let g = 0; g < groups; g++) {
    const t = volume.groups[g]!.inodeTable;
    for (let j = 0; j < ipb; j += batch) {
      const n = Math.min(batch, ipb - j);
      const chunk = buf.subarray(0, n * bs);
      readAll(volume.source, (t + j) * bs, chunk);
      if (stream) put(out, chunk);
      else {
        let run = -1;
        for (let k = 0; k <= n; k++) {
          const zero = k === n || isZero(chunk.subarray(k * bs, (k + 1) * bs));
          if (!zero && run < 0) run = k;
          if (zero && run >= 0) {
            put(out + run * bs, chunk.subarray(run * bs, k * bs));
            run = -1;
          }
        }
      }
      out += n * bs;
    }
  }
  // Bitmaps, each zero-padded to a block.
  const bitmapPart = (start: number, end: number, get: (g: number) => Uint8Array) => {
    const part = new Uint8Array(end - start);
    let p = 0;
    for (let g = 0; g < groups; g++) {
      const b = get(g);
      part.set(b.subarray(0, Math.min(b.length, part.length - p)), p);
      p += b.length;
    }
    put(start, part);
  };
  bitmapPart(layout.offsetBlockmap, layout.offsetInodemap, (g) => volume.blockBitmap(g));
  bitmapPart(layout.offsetInodemap, layout.size, (g) => volume.inodeBitmap(g));
  if (!stream) {
    if (sink.size < layout.size) sink.truncate?.(layout.size);
    header();
  }
  return layout;
}
