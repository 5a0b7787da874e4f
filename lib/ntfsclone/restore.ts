/**
 * Restoring an ntfsclone image to a file, a block device or a stream, as
 * `ntfsclone --restore-image` does, and listing the clusters an image stores.
 *
 * @module
 */
import { UnsupportedFeatureError, WriteError } from "../errors.ts";
import { type BlockExtent, BlockSetBuilder } from "../_internal/extents.ts";
import type { ReaderSync, Sink } from "../io/types.ts";
import { type NtfscloneHeader, restoredSize } from "./header.ts";
import { NtfscloneImageReader, type NtfscloneImageReaderOptions } from "./decoder.ts";

/** Options of {@linkcode restoreNtfsclone}. */
export interface RestoreOptions extends NtfscloneImageReaderOptions {
  /**
   * Progress, called per batch: `done` counts NEXT records (plus, on a stream, each zero-filled
   * gap cluster); `total` is `inuse + 1` (on a stream `nrClusters + 1`), as ntfsclone counts.
   */
  onProgress?: (done: number, total: number) => void;
  /** Decode and validate the whole image but write nothing (`ntfsclone -r -n`). */
  dryRun?: boolean;
}

/** What {@linkcode restoreNtfsclone} did. */
export interface RestoreResult {
  /** The image header. */
  header: NtfscloneHeader;
  /** NEXT records restored. */
  clusters: number;
  /** GAP records seen. */
  gaps: number;
  /** Payload bytes written (or that would be, under `dryRun`). */
  bytesWritten: number;
  /** Zero bytes written for gaps (stream sinks only). */
  zeroBytesWritten: number;
  /** Image bytes decoded, header included. */
  imageBytesRead: number;
  /** One past the last byte written: the length a freshly truncated file ends with. */
  end: number;
  /**
   * The image ended at cluster `nrClusters` without the backup-boot record (a 10.0 image);
   * ntfsclone warns `Warning : no alternate boot sector in image`.
   */
  missingBackupBoot: boolean;
}

const ZEROS = new Uint8Array(1 << 20);

/**
 * Restores an ntfsclone image (read sequentially from `input`: a file, stdin, or an
 * {@linkcode NtfscloneImageReader} whose header the caller has already looked at) to `sink`:
 *
 * - every stored cluster goes to byte `lcn * clusterSize`, verbatim;
 * - a `"file"` sink gets holes for gaps (nothing is written for them); opened empty, as the CLI
 *   does, it ends at the last written byte, exactly like ntfsclone's output (an image without
 *   the backup-boot record can therefore restore shorter than the volume);
 * - a `"device"` sink keeps its old bytes in gaps; it is refused before anything is written when
 *   smaller than {@linkcode restoredSize} (`min(deviceSize, (nrClusters + 1) * clusterSize)`),
 *   so no write ever passes the device end;
 * - a `"stream"` sink gets zeros for gaps; an image starting with a gap or going backwards (a
 *   metadata image) is refused with {@linkcode UnsupportedFeatureError}, as ntfsclone does.
 *
 * Writes never pass `deviceSize`. A corrupt or truncated image throws
 * {@linkcode CorruptImageError} with the image byte offset (and ntfsclone's wording in
 * `details.compat`); what was restored before stays, as with ntfsclone. The sink is not synced
 * or closed.
 *
 * @example
 * ```ts
 * import { MemorySink } from "../io/mod.ts";
 * import { createNtfscloneHeader, NtfscloneImageWriter, restoreNtfsclone } from "./mod.ts";
 * const header = createNtfscloneHeader({ clusterSize: 512, deviceSize: 2048, nrClusters: 3, inuse: 2 });
 * const img = new MemorySink({ kind: "stream" });
 * const w = new NtfscloneImageWriter(img, header);
 * w.clusters(new Uint8Array(512).fill(1));
 * w.gap(2);
 * w.clusters(new Uint8Array(512).fill(2));
 * w.finish();
 * let at = 0;
 * const bytes = img.bytes();
 * const input = { readSync(p: Uint8Array) {
 *   const n = Math.min(p.length, bytes.length - at); p.set(bytes.subarray(at, at + n)); at += n;
 *   return n || null;
 * } };
 * const out = new MemorySink();
 * const r = restoreNtfsclone(input, out);
 * console.assert(r.end === 2048 && out.bytes()[1536] === 2 && out.bytes()[512] === 0);
 * ```
 */
export function restoreNtfsclone(
  input: ReaderSync | NtfscloneImageReader,
  sink: Sink | null,
  options: RestoreOptions = {},
): RestoreResult {
  const reader = input instanceof NtfscloneImageReader
    ? input
    : new NtfscloneImageReader(input, options);
  const h = reader.header;
  const cs = h.clusterSize;
  const dry = options.dryRun ?? false;
  if (!dry && !sink) throw new TypeError("A sink is required unless dryRun is set");
  const stream = !dry && sink!.kind === "stream";
  if (!dry && sink!.kind === "device") {
    const need = restoredSize(h);
    if (sink!.size < need) {
      throw new WriteError(
        sink!.name,
        sink!.size,
        `Output device is too small (${sink!.size}) to fit the NTFS image (${need})`,
        true,
      );
    }
  }
  const total = stream ? h.nrClusters + 1 : h.inuse + 1;
  const res: RestoreResult = {
    header: h,
    clusters: 0,
    gaps: 0,
    bytesWritten: 0,
    zeroBytesWritten: 0,
    imageBytesRead: 0,
    end: 0,
    missingBackupBoot: false,
  };
  const base = stream ? sink!.size : 0;
  let done = 0;
  let sawCluster = false;
  let streamPos = 0; // bytes of the restored device emitted to a stream
  for (let c = reader.next(); c; c = reader.next()) {
    if (c.kind === "clusters") {
      const off = c.lcn * cs;
      if (!dry) sink!.writeAt(base + off, c.data);
      sawCluster = true;
      res.bytesWritten += c.data.length;
      const end = off + c.data.length;
      if (end > res.end) res.end = end;
      streamPos = end;
      done = reader.clusterCount + res.zeroBytesWritten / cs;
    } else {
      if (stream) {
        if (!sawCluster || c.count < 0) {
          throw new UnsupportedFeatureError(
            "ntfsclone",
            "restoring a metadata image to a stream",
            `Cannot restore ntfsclone image: a gap ${
              sawCluster ? "going backwards" : "before the first cluster"
            } means a metadata image, which cannot be written to a stream`,
            "Cannot restore a metadata image to stdout",
          );
        }
        let left = c.count * cs;
        while (left > 0) {
          const n = Math.min(left, ZEROS.length);
          sink!.writeAt(base + streamPos, ZEROS.subarray(0, n));
          streamPos += n;
          left -= n;
        }
        res.zeroBytesWritten += c.count * cs;
        res.end = streamPos;
      }
      done = reader.clusterCount + res.zeroBytesWritten / cs;
    }
    options.onProgress?.(done, total);
  }
  res.clusters = reader.clusterCount;
  res.gaps = reader.gapCount;
  res.imageBytesRead = reader.offset;
  res.missingBackupBoot = reader.missingBackupBoot;
  return res;
}

/** What {@linkcode listNtfscloneClusters} found. */
export interface NtfscloneClusterList {
  /** The image header. */
  header: NtfscloneHeader;
  /** The clusters the image stores, sorted and merged. */
  used: BlockExtent[];
  /** True when the image lacks the backup-boot record. */
  missingBackupBoot: boolean;
}

/**
 * Decodes a whole image and returns the set of clusters it stores — for a plain saved image,
 * exactly the used clusters the saver found (the backup-boot cluster included).
 *
 * @example
 * ```ts
 * import { MemorySink } from "../io/mod.ts";
 * import { createNtfscloneHeader, listNtfscloneClusters, NtfscloneImageWriter } from "./mod.ts";
 * const img = new MemorySink({ kind: "stream" });
 * const w = new NtfscloneImageWriter(img, createNtfscloneHeader({ clusterSize: 512, deviceSize: 2048, nrClusters: 3, inuse: 1 }));
 * w.clusters(new Uint8Array(512)); w.gap(2); w.clusters(new Uint8Array(512)); w.finish();
 * let at = 0;
 * const b = img.bytes();
 * const list = listNtfscloneClusters({ readSync(p: Uint8Array) {
 *   const n = Math.min(p.length, b.length - at); p.set(b.subarray(at, at + n)); at += n; return n || null;
 * } });
 * console.assert(JSON.stringify(list.used) === '[{"start":0,"count":1},{"start":3,"count":1}]');
 * ```
 */
export function listNtfscloneClusters(
  input: ReaderSync | NtfscloneImageReader,
  options: NtfscloneImageReaderOptions = {},
): NtfscloneClusterList {
  const reader = input instanceof NtfscloneImageReader
    ? input
    : new NtfscloneImageReader(input, options);
  const b = new BlockSetBuilder();
  for (let c = reader.next(); c; c = reader.next()) {
    if (c.kind === "clusters") b.addRange(c.lcn, c.count);
  }
  return { header: reader.header, used: b.build(), missingBackupBoot: reader.missingBackupBoot };
}
