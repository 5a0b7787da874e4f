/**
 * The metadata-only modes of `fsimage ntfsclone`: `-m` (a sparse file holding only the
 * metadata, wiped) and `-m -s` (a metadata image), with ntfsclone's two passes, transcripts
 * and counters.
 *
 * @module
 */
import { ReadError } from "../errors.ts";
import type { FdSink } from "../io/mod.ts";
import {
  addWipeStats,
  emitMetadata,
  metadataInodeInuse,
  type MetadataSink,
  type NtfsVolume,
  SystemFile,
  type WipeStats,
} from "../ntfs/mod.ts";
import { createNtfscloneHeader, NtfscloneImageWriter } from "../ntfsclone/mod.ts";
import {
  accountClusters,
  badClusterLookup,
  diskFaulty,
  diskUsageLine,
  libntfsLogHooks,
  type NtfscloneRun,
  rescueRead,
  scanVolume,
  serialPatcher,
  syncing,
} from "./ntfsclone.ts";
import { NtfsProgress } from "./ntfsclone_progress.ts";

function printStats(run: NtfscloneRun, records: number, s: WipeStats): void {
  const n = (v: number) => String(v >>> 0).padStart(10);
  const total = (s.unusedMftData + s.deletedMftData + s.residentData + s.timestampData) >>> 0;
  run.out.write(
    `Num of MFT records       = ${n(records)}\n` +
      `Num of used MFT records  = ${n(s.usedRecords)}\n` +
      `Wiped unused MFT data    = ${n(s.unusedMftData)}\n` +
      `Wiped deleted MFT data   = ${n(s.deletedMftData)}\n` +
      `Wiped resident user data = ${n(s.residentData)}\n` +
      `Wiped timestamp data     = ${n(s.timestampData)}\n` +
      `Wiped totally            = ${n(total)}\n`,
  );
}

/** Runs a metadata clone (-m, or -m -s); returns the exit status. */
export function runMetadataClone(
  run: NtfscloneRun,
  vol: NtfsVolume,
  sink: FdSink,
  deviceSize: number,
): number {
  const { opts, out } = run;
  const cs = vol.clusterSize, nr = vol.nrClusters;
  // The sparse clone copies cluster 0 (and prints a new serial) while walking $Boot.
  const note = opts.newSerial && !opts.metadataImage
    ? {
      inode: SystemFile.BOOT,
      text: `New serial number      : 0x${
        (opts.newSerial & 2 ? 0n : vol.boot.serialNumber & 0xffffffffn).toString(16)
      }\n`,
    }
    : undefined;
  const image = opts.metadataImage;
  // The metadata image's first-pass count, taken during the scan's walk (one pass, not two).
  let imageInuse = 0;
  const scan = scanVolume(
    run,
    vol,
    note,
    image ? (ino) => (imageInuse += metadataInodeInuse(ino, cs, opts.fullLogfile)) : undefined,
  );
  accountClusters(run, scan);
  const extra = opts.ignoreFsCheck ? scan.extra : [];
  const printed = image ? imageInuse : scan.inuse + scan.badInUse + 1;
  out.write(diskUsageLine("", cs, nr, printed));
  badClusterLookup(run, scan);
  if (scan.badClusters) {
    out.write(`WARNING: The disk has ${scan.badClusters} or more bad sectors (hardware faults).\n`);
  }
  const read = (offset: number, buf: Uint8Array) => rescueRead(run, vol, offset, buf);
  // --new-serial cannot draw its number in these modes: the serial becomes 0 (or half 0).
  const patch = opts.newSerial
    ? serialPatcher(run, cs, deviceSize, 0n, opts.metadataImage)
    : undefined;
  const patched = (lcn: number, data: Uint8Array): Uint8Array => {
    if (!patch) return data;
    const copy = data.slice();
    for (let o = 0; o < copy.length; o += cs) {
      patch(lcn * cs + o, copy.subarray(o, Math.min(o + cs, copy.length)));
    }
    return copy;
  };
  let msink: MetadataSink;
  let writer: NtfscloneImageWriter | undefined;
  if (image) {
    const header = createNtfscloneHeader({
      clusterSize: cs,
      deviceSize,
      nrClusters: nr,
      inuse: printed - scan.badInUse,
    });
    const w = new NtfscloneImageWriter(sink, header);
    writer = w;
    msink = {
      gap: (n) => w.gap(n),
      clusters: (lcn, data) => w.clusters(patched(lcn, data)),
    };
  } else {
    msink = {
      gap: () => {},
      clusters: (lcn, data) => sink.writeAt(lcn * cs, patched(lcn, data)),
    };
    syncing(run, sink);
    out.write(`NTFS volume version: ${vol.majorVersion}.${vol.minorVersion}\n`);
    out.write(`Cluster size       : ${cs} bytes\n`);
    const bytes = nr * cs;
    out.write(`Current volume size: ${bytes} bytes (${Math.ceil(bytes / 1e6)} MB)\n`);
  }
  out.write("Scanning volume ...\n");
  const p = new NtfsProgress(out, vol.recordCount - 1, opts.quiet);
  // Under --ignore-fs-check the second walk reports the clusters referenced twice again.
  const dups = opts.ignoreFsCheck ? scan.duplicates.slice() : [];
  const flushDups = (before: number) => {
    while (dups.length && dups[0]!.inode < before) {
      const d = dups.shift()!;
      for (let c = d.start; c < d.start + d.count; c++) {
        out.write(`Cluster ${c} is referenced twice!\n`);
      }
    }
  };
  const res = emitMetadata(vol, msink, {
    preserveTimestamps: opts.preserveTimestamps,
    fullLogfile: opts.fullLogfile,
    indexBlocks: image ? "all" : "bitmap",
    ...(image && opts.ignoreFsCheck ? { extra } : {}),
    read,
    onRecord: (r) => {
      flushDups(r);
      p.update(r);
    },
    onDamagedIndex: () => out.write("ERROR(5): Damaged INDX record: Input/output error\n"),
    onCorruptRecord: () =>
      run.ctx.stderr.write("ntfs_attr_find: Corrupt inode (-1): Input/output error\n"),
    ...libntfsLogHooks(run),
    onExtra: () => {
      flushDups(Infinity);
      accountClusters(run, scan);
    },
  });
  flushDups(Infinity);
  if (!image && extra.length) {
    for (const e of extra) msink.clusters(e.start, readClusters(read, e.start * cs, e.count * cs));
  }
  const stats = image ? addWipeStats(res.walk, res.mft, res.mirror, res.index) : {
    ...res.walk,
    unusedMftData: res.mft.unusedMftData,
    deletedMftData: res.mft.deletedMftData,
  };
  stats.usedRecords = res.walk.usedRecords;
  printStats(run, vol.recordCount, stats);
  if (writer) writer.finish();
  else syncing(run, sink);
  return 0;
}

function readClusters(read: (o: number, b: Uint8Array) => void, offset: number, length: number) {
  const b = new Uint8Array(length);
  read(offset, b);
  return b;
}

/** Re-exported for callers that need the faulty-disk exit. */
export { diskFaulty, ReadError };
