/**
 * A consistency check of a QCOW2 image's metadata, the counterpart of `qemu-img check` without
 * repair: recount every reference (header, tables, data, snapshots), compare with the stored
 * refcounts, and check the COPIED flags, alignment and reserved bits. Used to audit images
 * (e2image's `-Q` output, for one, always leaks a cluster) and by the tests of our writer.
 *
 * @module
 */
import { CorruptImageError, LimitExceededError, UnsupportedFeatureError } from "../errors.ts";
import { u16be, u32be } from "../_internal/bytes.ts";
import type { Source } from "../io/types.ts";
import { readFully } from "../io/util.ts";
import {
  parseQcow2Header,
  QCOW2_EXT_BITMAPS,
  QCOW2_INCOMPAT_DATA_FILE,
  QCOW2_INCOMPAT_EXTL2,
  QCOW2_MAGIC,
  QCOW2_MAX_L1_ENTRIES,
  type Qcow2Header,
} from "./header.ts";

/** Options of {@linkcode checkQcow2}. */
export interface CheckQcow2Options {
  /** Keep at most this many messages (counts are always complete); default 1000. */
  maxMessages?: number;
}

/** What {@linkcode checkQcow2} found, in `qemu-img check`'s terms. */
export interface Qcow2CheckResult {
  /** Errors that can lose data: references above the stored refcount, bad flags, bad offsets. */
  corruptions: number;
  /** Clusters whose stored refcount is above their number of references (wasted space). */
  leaks: number;
  /** End of the last cluster with a stored or counted reference (qemu's image-end-offset). */
  imageEndOffset: number;
  /** One line per finding, worded as qemu-img check words them (capped by `maxMessages`). */
  messages: string[];
  /** The parsed header. */
  header: Qcow2Header;
}

/** Largest file (in clusters) the check counts references for: 1 GiB of counters at most. */
const MAX_CHECK_CLUSTERS = 2 ** 28;

function hex(n: number | bigint): string {
  return "0x" + n.toString(16);
}

/**
 * Checks the refcounts and flags of the QCOW2 image in `source` like `qemu-img check` (no
 * repair). `corruptions === 0 && leaks === 0` is what `qemu-img check` reports as exit 0.
 *
 * Memory: one counter per cluster of the image file (2 or 4 bytes; the file, not the virtual
 * disk), the L1 tables, one L2 table and a few refcount blocks.
 *
 * @throws {CorruptImageError} the header or a table needed to walk the image is unreadable
 * @throws {UnsupportedFeatureError} encryption or persistent bitmaps (not counted here)
 * @throws {LimitExceededError} an image file of more than 2^28 clusters
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "../io/memory.ts";
 * import { checkQcow2 } from "./check.ts";
 * import { writeQcow2 } from "./writer.ts";
 * const out = new MemorySink();
 * const raw = new Uint8Array(1 << 20).fill(3);
 * writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: raw.length }], {
 *   virtualSize: raw.length,
 *   clusterSize: 4096,
 * });
 * const r = checkQcow2(new MemorySource(out.bytes()));
 * console.assert(r.corruptions === 0 && r.leaks === 0 && r.imageEndOffset === out.size);
 * ```
 */
export function checkQcow2(source: Source, options: CheckQcow2Options = {}): Qcow2CheckResult {
  const fsz = source.size;
  const first = new Uint8Array(Math.min(fsz, 4096));
  readFully(source, 0, first);
  if (first.length < 8 || u32be(first, 0) !== QCOW2_MAGIC) {
    throw new CorruptImageError(
      `Cannot check QCOW2 image ${source.name}: no QCOW2 magic (byte 0x0)`,
      {
        format: "qcow2",
        offset: 0,
      },
    );
  }
  let hb = first;
  if (first.length >= 24) {
    const cb = u32be(first, 20);
    if (cb >= 9 && cb <= 21 && 2 ** cb > first.length && fsz > first.length) {
      hb = new Uint8Array(Math.min(fsz, 2 ** cb));
      readFully(source, 0, hb);
    }
  }
  const h = parseQcow2Header(hb);
  if (h.cryptMethod !== 0) {
    throw new UnsupportedFeatureError(
      "qcow2",
      "encryption",
      `Cannot check QCOW2 image ${source.name}: it is encrypted`,
    );
  }
  if (h.extensions.some((e) => e.type === QCOW2_EXT_BITMAPS)) {
    throw new UnsupportedFeatureError(
      "qcow2",
      "persistent bitmaps",
      `Cannot check QCOW2 image ${source.name}: persistent bitmaps are not supported by the check`,
    );
  }
  const cb = h.clusterBits, cs = 2 ** cb;
  const extL2 = (h.incompatibleFeatures & QCOW2_INCOMPAT_EXTL2) !== 0n;
  const dataFile = (h.incompatibleFeatures & QCOW2_INCOMPAT_DATA_FILE) !== 0n;
  const esz = extL2 ? 16 : 8;
  const l2n = cs / esz;
  const refBits = 2 ** h.refcountOrder;
  const nb = Math.ceil(fsz / cs);
  if (nb > MAX_CHECK_CLUSTERS) {
    throw new LimitExceededError(
      `Cannot check QCOW2 image ${source.name}: ${nb} clusters exceed the cap of ${MAX_CHECK_CLUSTERS}`,
    );
  }
  const counts = refBits <= 16 ? new Uint16Array(nb) : new Uint32Array(nb);
  const countMax = refBits <= 16 ? 0xffff : 0xffffffff;
  const maxMessages = options.maxMessages ?? 1000;
  const messages: string[] = [];
  let corruptions = 0, leaks = 0;
  const say = (line: string) => {
    if (messages.length < maxMessages) messages.push(line);
  };
  const corrupt = (line: string) => {
    corruptions++;
    say(line);
  };

  /** Counts one reference to every cluster touched by `[offset, offset + size)`. */
  const inc = (offset: number, size: number) => {
    if (size <= 0) return;
    if (offset + size - fsz >= cs) {
      corrupt(
        `ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset ${
          hex(offset)
        } size ${hex(size)}`,
      );
      return;
    }
    const a = Math.floor(offset / cs), b = Math.floor((offset + size - 1) / cs);
    for (let k = a; k <= b && k < nb; k++) {
      if (counts[k]! >= countMax) {
        corrupt(`ERROR: overflow cluster offset=${hex(k * cs)}`);
        continue;
      }
      counts[k]!++;
    }
  };

  /** Reads a u64 table entry as [hi, lo] halves. */
  const l2buf = new Uint8Array(cs);

  /** Walks one L1 table; `active` enables the COPIED checks (collected for later). */
  const copiedChecks: Array<[number, number, number, number]> = []; // [kind, at, hi, lo]
  // Snapshots may share tables; bound the total walk by the file size so that thousands of
  // snapshot entries pointing at one big table cannot make the check run for hours.
  let walkBudget = 64 * fsz + 256 * 1024 * 1024;
  const spend = (n: number) => {
    walkBudget -= n;
    if (walkBudget < 0) {
      throw new LimitExceededError(
        `Cannot check QCOW2 image ${source.name}: its snapshots reference more than 64 times the file size in tables`,
      );
    }
  };
  const walkL1 = (l1off: number, l1size: number, active: boolean) => {
    if (l1size === 0) return;
    spend(l1size * 8);
    inc(l1off, l1size * 8);
    if (l1off + l1size * 8 > fsz) return; // reported by inc (or a partial tail: unread entries)
    const l1 = new Uint8Array(l1size * 8);
    readFully(source, l1off, l1);
    for (let i = 0; i < l1size; i++) {
      const hi = u32be(l1, i * 8), lo = u32be(l1, i * 8 + 4);
      if (hi === 0 && lo === 0) continue;
      if ((hi & 0x7f000000) !== 0 || (lo & 0x1ff) !== 0) {
        corrupt(`ERROR found L1 entry with reserved bits set: ${hex(entryN(hi, lo))}`);
      }
      const off = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
      if (off === 0) continue;
      inc(off, cs);
      if (off % cs !== 0) {
        corrupt(
          `ERROR l2_offset=${off.toString(16)}: Table is not cluster aligned; L1 entry corrupted`,
        );
        continue;
      }
      if (active) copiedChecks.push([1, l1off + i * 8, hi, lo]);
      if (off + cs > fsz) continue;
      spend(cs);
      readFully(source, off, l2buf);
      walkL2(off, active);
    }
  };

  const walkL2 = (l2off: number, active: boolean) => {
    const x32 = 30 - (cb - 8);
    const nsMask = (1 << (cb - 8)) - 1;
    for (let j = 0; j < l2n; j++) {
      const p = j * esz;
      const hi = u32be(l2buf, p), lo = u32be(l2buf, p + 4);
      const at = l2off + p;
      if ((hi & 0x40000000) !== 0) {
        if ((hi & 0x80000000) !== 0) {
          corrupt(
            `ERROR: coffset=${
              hex(entryN(hi & 0x3fffffff, lo))
            }: copied flag must never be set for compressed clusters`,
          );
        }
        if (extL2 && (u32be(l2buf, p + 8) !== 0 || u32be(l2buf, p + 12) !== 0)) {
          corrupt(
            `ERROR compressed cluster ${j} with non-zero subcluster allocation bitmap, entry=${
              hex(entryN(hi, lo))
            }`,
          );
        }
        if (dataFile) {
          corrupt(`ERROR compressed cluster in an image with an external data file at ${hex(at)}`);
          continue;
        }
        const coff = (hi & ((1 << x32) - 1)) * 0x100000000 + lo;
        const nsect = (hi >>> x32) & nsMask;
        const start = coff - (coff % 512);
        inc(start, (nsect + 1) * 512);
        continue;
      }
      const resMask = extL2 ? 0x1ff : 0x1fe;
      if ((hi & 0x3f000000) !== 0 || (lo & resMask) !== 0) {
        corrupt(`ERROR found L2 entry with reserved bits set: ${hex(entryN(hi, lo))}`);
      }
      const off = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
      if (extL2) {
        const zbits = u32be(l2buf, p + 8), abits = u32be(l2buf, p + 12);
        if ((zbits & abits) !== 0) {
          corrupt(
            `ERROR Allocated cluster has corrupted subcluster allocation bitmap at ${hex(at)}`,
          );
          continue;
        }
        if (off === 0 && abits !== 0) {
          corrupt(`ERROR Unallocated cluster has non-zero subcluster allocation map at ${hex(at)}`);
          continue;
        }
      } else if ((lo & 1) !== 0 && off === 0) continue; // ZERO_PLAIN
      if (off === 0) continue; // unallocated (COPIED alone does not allocate)
      if (off % cs !== 0) {
        // qemu reports it and still counts the cluster-sized range it points at.
        corrupt(
          `ERROR offset=${
            off.toString(16)
          }: Data cluster is not properly aligned; L2 entry corrupted.`,
        );
      }
      if (!dataFile) inc(off, cs);
      if (active && !dataFile) copiedChecks.push([2, at, hi, lo]);
    }
  };

  // Header cluster, active tables, snapshots, refcount table.
  inc(0, cs);
  if (h.l1Size > QCOW2_MAX_L1_ENTRIES) throw new LimitExceededError("L1 table too large");
  walkL1(h.l1TableOffset, h.l1Size, true);
  walkSnapshots(source, h, fsz, inc, corrupt, (o, n) => walkL1(o, n, false));
  const rtBytes = h.refcountTableClusters * cs;
  inc(h.refcountTableOffset, rtBytes);
  const rtAvail = Math.max(0, Math.min(rtBytes, fsz - h.refcountTableOffset));
  const rt = new Uint8Array(Math.floor(rtAvail / 8) * 8);
  if (rt.length > 0) readFully(source, h.refcountTableOffset, rt);
  const perBlock = (cs * 8) / refBits;
  const blocks: number[] = [];
  for (let b = 0; b < rt.length / 8; b++) {
    const hi = u32be(rt, b * 8), lo = u32be(rt, b * 8 + 4);
    // qemu reports reserved bits and then neither counts the block as referenced nor
    // ignores its contents.
    const reserved = (lo & 0x1ff) !== 0;
    if (reserved) corrupt(`ERROR refcount table entry ${b} has reserved bits set`);
    const off = hi * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
    blocks.push(0);
    if (off === 0) continue;
    if (off % cs !== 0) {
      corrupt(`ERROR refcount block ${b} is not cluster aligned; refcount table entry corrupted`);
      continue;
    }
    if (off >= fsz) {
      corrupt(`ERROR refcount block ${b} is outside image`);
      continue;
    }
    if (!reserved) inc(off, cs);
    blocks[b] = off;
  }

  // Stored refcounts, block by block.
  const block = new Uint8Array(cs);
  const read = (i: number): number => {
    switch (refBits) {
      case 1:
        return (block[i >>> 3]! >>> (i & 7)) & 1;
      case 2:
        return (block[i >>> 2]! >>> ((i & 3) * 2)) & 3;
      case 4:
        return (block[i >>> 1]! >>> ((i & 1) * 4)) & 15;
      case 8:
        return block[i]!;
      case 16:
        return u16be(block, i * 2);
      case 32:
        return u32be(block, i * 4);
      default: {
        const hi = u32be(block, i * 8), lo = u32be(block, i * 8 + 4);
        return hi > 0x1fffff ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
      }
    }
  };
  let highest = -1;
  const storedCache = new Map<number, Uint8Array>();
  for (let b = 0; b * perBlock < nb; b++) {
    const off = blocks[b] ?? 0;
    if (off) readFully(source, off, block);
    else block.fill(0);
    if (off && storedCache.size < 64) storedCache.set(b, block.slice());
    const end = Math.min(nb, (b + 1) * perBlock);
    for (let k = b * perBlock; k < end; k++) {
      const stored = read(k - b * perBlock), counted = counts[k]!;
      if (stored > 0 || counted > 0) highest = k;
      if (stored < counted) {
        corrupt(`ERROR cluster ${k} refcount=${stored} reference=${counted}`);
      } else if (stored > counted) {
        leaks++;
        say(`Leaked cluster ${k} refcount=${stored} reference=${counted}`);
      }
    }
  }

  // COPIED flags of the active tables against the stored refcounts.
  const storedAt = (cluster: number): number => {
    const b = Math.floor(cluster / perBlock);
    let blk = storedCache.get(b);
    if (!blk) {
      const off = blocks[b] ?? 0;
      if (!off) return 0;
      blk = new Uint8Array(cs);
      readFully(source, off, blk);
      if (storedCache.size >= 256) storedCache.delete(storedCache.keys().next().value!);
      storedCache.set(b, blk);
    }
    block.set(blk);
    return read(cluster - b * perBlock);
  };
  for (const [kind, , hi, lo] of copiedChecks) {
    const off = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
    const refcount = storedAt(Math.floor(off / cs));
    const copied = (hi & 0x80000000) !== 0;
    if (copied !== (refcount === 1)) {
      corrupt(
        kind === 1
          ? `ERROR OFLAG_COPIED L2 cluster: l1_entry=${hex(entryN(hi, lo))} refcount=${refcount}`
          : `ERROR OFLAG_COPIED data cluster: l2_entry=${hex(entryN(hi, lo))} refcount=${refcount}`,
      );
    }
  }

  return { corruptions, leaks, imageEndOffset: (highest + 1) * cs, messages, header: h };
}

function entryN(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Counts the snapshot table and walks every snapshot's L1 table. */
function walkSnapshots(
  source: Source,
  h: Qcow2Header,
  fsz: number,
  inc: (offset: number, size: number) => void,
  corrupt: (line: string) => void,
  walkL1: (offset: number, size: number) => void,
): void {
  if (h.nbSnapshots === 0) return;
  const cs = 2 ** h.clusterBits;
  const maxTable = 64 * 1024 * 1024;
  let p = h.snapshotsOffset;
  const start = p;
  const head = new Uint8Array(40);
  const found: Array<[number, number]> = [];
  for (let s = 0; s < h.nbSnapshots; s++) {
    if (p + 40 > fsz || p - start + 40 > maxTable) {
      throw new CorruptImageError(
        `Cannot check QCOW2 image ${source.name}: snapshot ${s} header at ${
          hex(p)
        } lies past the end of the file or the 64 MiB table cap`,
        { format: "qcow2", structure: "snapshot table", offset: p },
      );
    }
    readFully(source, p, head);
    const l1off = u32be(head, 0) * 0x100000000 + u32be(head, 4);
    const l1size = u32be(head, 8);
    const idLen = u16be(head, 12), nameLen = u16be(head, 14);
    const extra = u32be(head, 36);
    if (extra > 1024) {
      throw new CorruptImageError(
        `Cannot check QCOW2 image ${source.name}: snapshot ${s} has ${extra} bytes of extra data, more than 1024 (byte ${
          hex(p + 36)
        })`,
        { format: "qcow2", structure: "snapshot table", field: "extra_data_size", offset: p + 36 },
      );
    }
    if (l1off % cs !== 0 || l1size > QCOW2_MAX_L1_ENTRIES) {
      corrupt(
        `ERROR snapshot ${s} has an invalid L1 table (offset ${hex(l1off)}, ${l1size} entries)`,
      );
    } else found.push([l1off, l1size]);
    p += 40 + extra + idLen + nameLen;
    p = Math.ceil(p / 8) * 8;
  }
  inc(start, p - start);
  for (const [o, n] of found) walkL1(o, n);
}
