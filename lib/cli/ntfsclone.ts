/**
 * `fsimage ntfsclone`: a drop-in ntfsclone 2022.10.3. It clones an NTFS volume to a sparse
 * file, a block device or stdout, saves and restores the special image format, and makes
 * metadata-only clones and images, with ntfsclone's options, messages (stdout, or stderr when
 * the output is stdout), progress lines and exit statuses.
 *
 * @module
 */
import { nodeFs } from "../_internal/node_builtin.ts";
import {
  CorruptImageError,
  FsimageError,
  ReadError,
  UnsupportedFeatureError,
  WriteError,
} from "../errors.ts";
import type { BlockExtent } from "../_internal/extents.ts";
import {
  copyExtents,
  type FdSink,
  FdSource,
  openSink,
  openSource,
  OverlaySource,
  type ReaderSync,
  type Sink,
  type Source,
  stdinSource,
  stdoutSink,
  WritebackSink,
} from "../io/mod.ts";
import { type NtfsScan, NtfsVolume, type NtfsWalkInode, parseNtfsBootSector } from "../ntfs/mod.ts";
import { scrubNtfs } from "../ntfs/scrub.ts";
import {
  createNtfscloneHeader,
  NtfscloneImageReader,
  NtfscloneImageWriter,
  restoreNtfsclone,
  saveImage,
} from "../ntfsclone/mod.ts";
import type { CommandContext, TextWriter } from "./context.ts";
import { dropAllPermissions, explainMissing, readMountTable } from "./permissions.ts";
import {
  errCode,
  NTFSCLONE_BANNER,
  type NtfscloneOptions,
  parseNtfscloneArgs,
  perrLine,
} from "./ntfsclone_options.ts";
import { megabytes, NtfsProgress, printfFixed } from "./ntfsclone_progress.ts";
import { runMetadataClone } from "./ntfsclone_metadata.ts";

/** Ends the command with a status after its message was printed. */
export class NtfscloneExit extends Error {
  /** The exit status. */
  readonly status: number;
  /** Creates the exit. */
  constructor(status: number) {
    super(`exit ${status}`);
    this.status = status;
  }
}

const BAD_SECTORS_WARNING =
  "*************************************************************************\n" +
  "* WARNING: The disk has one or more bad sectors. This means that damage *\n" +
  "* has occurred on the disk surface, possibly caused by deterioration of *\n" +
  "* the physical media, manufacturing faults or other reasons. The        *\n" +
  "* reliability of the disk may stay stable or degrade fast.              *\n" +
  "* Use the --rescue option to efficiently save as much data as possible! *\n" +
  "*************************************************************************\n";

/** Everything a run shares: options, message stream, context. */
export interface NtfscloneRun {
  /** The options. */
  opts: NtfscloneOptions;
  /** Where messages go: stdout, or stderr when the output is stdout. */
  out: TextWriter;
  /** The command context. */
  ctx: CommandContext;
  /** Hooks for tests: a source to use instead of opening `opts.source`. */
  source?: Source;
}

/** The walk's hooks that print libntfs's log lines on stderr, as ntfsclone shows them. */
export function libntfsLogHooks(run: NtfscloneRun): {
  onCorruptInode: (n: number) => void;
  onCorruptAttributeList: (n: number) => void;
  onOpenFailure: (n: number, message: string) => void;
  onTornRecord: (message: string) => void;
  onLog: (line: string) => void;
} {
  const err = run.ctx.stderr;
  return {
    onCorruptInode: (n) => err.write(`ntfs_attr_find: Corrupt inode (${n}): Input/output error\n`),
    onCorruptAttributeList: (n) => err.write(`Corrupt attribute list entry in MFT record ${n}\n`),
    onOpenFailure: (_n, message) => err.write(`${message}\n`),
    onTornRecord: (message) => err.write(`${message}: Input/output error\n`),
    onLog: (line) => err.write(`${line}\n`),
  };
}

/** Prints `ERROR: msg` and stops with status 1. */
export function errExit(run: NtfscloneRun, msg: string): never {
  run.out.write(`ERROR: ${msg}`);
  throw new NtfscloneExit(1);
}

/** Prints an errno error line and stops with status 1. */
export function perrExit(run: NtfscloneRun, what: string, code: string | undefined): never {
  run.out.write(perrLine(what, code));
  throw new NtfscloneExit(1);
}

function volumeSizeLine(label: string, bytes: number): string {
  return `${label}: ${bytes} bytes (${megabytes(bytes)} MB)\n`;
}

/** The "Space in use" line (`spacer` pads the label in the restore transcript). */
export function diskUsageLine(spacer: string, cs: number, nr: number, inuse: number): string {
  const total = nr * cs, used = inuse * cs;
  const pct = 100 * Math.fround(Math.fround(used) / Math.fround(total));
  return `Space in use       ${spacer}: ${megabytes(used)} MB (${printfFixed(pct, 1)}%)   \n`;
}

/** Checks the mount table for `path` (when it can be read). */
function mountState(path: string): { mounted: boolean; readOnly: boolean } {
  const table = readMountTable();
  if (!table) return { mounted: false, readOnly: false };
  let real = path;
  try {
    real = Deno.realPathSync(path);
  } catch {
    // keep the name
  }
  let st: Deno.FileInfo | undefined;
  try {
    st = Deno.statSync(path);
  } catch {
    // nothing
  }
  for (const m of table) {
    let same = m.device === path || m.device === real;
    if (!same && st?.isBlockDevice) {
      try {
        const s2 = Deno.statSync(m.device);
        same = s2.isBlockDevice === true && s2.rdev === st.rdev;
      } catch {
        // not a path
      }
    }
    if (same) return { mounted: true, readOnly: m.readOnly };
  }
  return { mounted: false, readOnly: false };
}

/** Mounts (opens) the source volume with ntfsclone's checks and messages. */
export function openNtfsVolume(run: NtfscloneRun, path: string, source?: Source): NtfsVolume {
  const { ctx } = run;
  let src = source;
  if (!src && path === "-") src = stdinSource() as FdSource;
  if (!src) {
    try {
      Deno.statSync(path);
    } catch (e) {
      perrExit(run, `Failed to check '${path}' mount state`, errCode(e));
    }
    const ms = mountState(path);
    if (ms.mounted && !ms.readOnly) {
      errExit(run, `Device '${path}' is mounted read-write. You must 'umount' it first.\n`);
    }
    try {
      src = openSource(path);
    } catch (e) {
      if (/not a file or block device/.test((e as Error).message)) notSeekable(run, path);
      const code = errCode(e) ?? "EIO";
      ctx.stderr.write(
        `Error reading bootsector: ${perrLine("", code).replace(/^ERROR\(\d+\): : /, "")}`,
      );
      perrExit(run, `Opening '${path}' as NTFS failed`, code);
    }
  }
  if (run.opts.scrub) {
    // fsimage --scrub: scrub a copy-on-write view of the volume (the source is never written),
    // then clone or save that view.
    const overlay = new OverlaySource(src, { blockSize: 512 });
    try {
      scrubNtfs(overlay, { wipeData: true });
    } catch (e) {
      if (!(e instanceof FsimageError)) throw e;
      ctx.stderr.write(`Cannot scrub '${path}': ${e.message}\n`);
      throw new NtfscloneExit(1);
    }
    src = overlay;
  }
  let vol: NtfsVolume;
  try {
    vol = NtfsVolume.open(src, {
      onLog: (line) => ctx.stderr.write(`${line}\n`),
      seekLastSector: (offset) => canSeek(src!, path, offset),
    });
  } catch (e) {
    if (!(e instanceof FsimageError)) throw e;
    let code = "EIO";
    if (e instanceof CorruptImageError) {
      if (e.details.structure === "boot sector") code = "EINVAL";
      ctx.stderr.write(`${e.details.compat ?? e.message}\n`);
    } else ctx.stderr.write(`${e.message}\n`);
    if (ctx.debug) ctx.stderr.write(`${e.message}\n`);
    run.out.write(perrLine(`Opening '${path}' as NTFS failed`, code));
    if (code === "EINVAL") {
      run.out.write(
        `Apparently device '${path}' doesn't have a valid NTFS. Maybe you selected\nthe whole disk instead of a partition (e.g. /dev/hda, not /dev/hda1)?\n`,
      );
    }
    throw new NtfscloneExit(1);
  }
  if (vol.dirty && run.opts.force-- <= 0) {
    errExit(
      run,
      `Volume '${path}' is scheduled for a check or it was shutdown \nuncleanly. Please boot Windows or use the --force option to progress.\n`,
    );
  }
  run.out.write(`NTFS volume version: ${vol.majorVersion}.${vol.minorVersion}\n`);
  const v = `${vol.majorVersion}.${vol.minorVersion}`;
  if (v !== "1.2" && v !== "3.0" && v !== "3.1") {
    perrExit(run, "Unknown NTFS version", "EOPNOTSUPP");
  }
  run.out.write(`Cluster size       : ${vol.clusterSize} bytes\n`);
  run.out.write(volumeSizeLine("Current volume size", vol.nrClusters * vol.clusterSize));
  return vol;
}

/**
 * A character device or pipe as the volume: libntfs reads its boot sector before giving up,
 * so the refusal names what it found there.
 */
function notSeekable(run: NtfscloneRun, path: string): never {
  const b = new Uint8Array(512);
  let n = 0;
  try {
    using f = Deno.openSync(path, { read: true });
    for (let k; n < 512 && (k = f.readSync(b.subarray(n)) ?? 0) > 0;) n += k;
  } catch (e) {
    perrExit(run, `Opening '${path}' as NTFS failed`, errCode(e));
  }
  let why = `Failed to read bootsector (size=${n})`;
  if (n === 512) {
    try {
      parseNtfsBootSector(b);
      why = "Failed to read last sector";
    } catch (e) {
      if (!(e instanceof CorruptImageError)) throw e;
      why = e.details.compat ?? e.message;
    }
  }
  run.ctx.stderr.write(`${why}\n`);
  run.out.write(perrLine(`Opening '${path}' as NTFS failed`, "EINVAL"));
  run.out.write(
    `Apparently device '${path}' doesn't have a valid NTFS. Maybe you selected\nthe whole disk instead of a partition (e.g. /dev/hda, not /dev/hda1)?\n`,
  );
  throw new NtfscloneExit(1);
}

/**
 * Whether lseek(2) to `offset` succeeds on the source: a block device refuses offsets past
 * its end, a file system offsets past its largest file (ext4: 16 TiB).
 */
function canSeek(src: Source, path: string, offset: bigint): boolean {
  if (src instanceof FdSource && src.kind === "device") return offset <= BigInt(src.size);
  if (path === "-" || !(src instanceof FdSource)) return true;
  try {
    using f = Deno.openSync(path, { read: true });
    f.seekSync(offset, Deno.SeekMode.Start);
    return true;
  } catch (e) {
    return !(e instanceof Error && /Invalid argument|os error 22/.test(e.message));
  }
}

/** The source's device size, printed and checked as ntfsclone does. */
function checkDeviceSize(run: NtfscloneRun, vol: NtfsVolume): number {
  const dev = vol.source.size;
  run.out.write(volumeSizeLine("Current device size", dev));
  if (dev < vol.nrClusters * vol.clusterSize) {
    errExit(
      run,
      `Current NTFS volume size is bigger than the device size (${dev})!\nCorrupt partition table or incorrect device partitioning?\n`,
    );
  }
  return dev;
}

/** Opens the output as ntfsclone does for the mode. */
export function openOutput(run: NtfscloneRun, image: boolean): FdSink {
  const { opts } = run;
  if (opts.stdOut) return stdoutSink();
  const path = opts.output!;
  let sink: FdSink;
  try {
    if (opts.outputUnknown && !opts.overwrite) {
      sink = openSink(path, { mode: "create-new", perm: image ? 0o666 : 0o600 });
    } else if (image) sink = openSink(path, { mode: "truncate", perm: 0o666 });
    else if (opts.blkdevOut) sink = openSink(path, { mode: "existing" });
    else sink = openSink(path, { mode: opts.overwrite ? "truncate" : "create-new", perm: 0o600 });
  } catch (e) {
    if (opts.outputUnknown && errCode(e) === "EEXIST") {
      errExit(
        run,
        `Output file '${path}' already exists.\nUse option --overwrite if you want to replace its content.\n`,
      );
    }
    perrExit(run, `Opening file '${path}' failed`, errCode(e));
  }
  if (opts.outputUnknown && sink.kind === "device") {
    opts.blkdevOut = true;
    if (opts.metadata && !opts.force) {
      sink.close();
      errExit(
        run,
        "Cloning only metadata to a block device does not usually make sense, aborting...\n" +
          "If you were instructed to do this by a developer and/or are sure that this is what you want to do, run this utility again but this time add the force option, i.e. add '--force' to the command line arguments.",
      );
    }
  }
  return sink;
}

/** check_output_device: the device size and mount checks, or set_filesize for files. */
export function checkOutputDevice(run: NtfscloneRun, sink: FdSink, ntfsSize: number): void {
  const { opts } = run;
  if (opts.blkdevOut) {
    if (sink.size < ntfsSize) {
      errExit(
        run,
        `Output device is too small (${sink.size}) to fit the NTFS image (${ntfsSize}).\n`,
      );
    }
    const ms = mountState(opts.output!);
    if (ms.mounted) {
      errExit(run, `Device '${opts.output}' is mounted. You must 'umount' it first.\n`);
    }
    return;
  }
  try {
    // ftruncate(2) of a pipe or a character device fails with EINVAL.
    if (sink.kind !== "file") {
      throw Object.assign(new Error("Invalid argument"), { code: "EINVAL" });
    }
    sink.truncate(ntfsSize);
  } catch (e) {
    const code = errCode(e);
    run.out.write(perrLine(`ftruncate failed for file '${opts.output}'`, code));
    const fsType = statfsType(opts.output!);
    if (fsType) run.out.write(`Destination filesystem type is 0x${fsType.toString(16)}.\n`);
    if (code === "EFBIG") {
      run.out.write("Your system or the destination filesystem doesn't support large files.\n");
    } else if (code === "EPERM") {
      run.out.write(
        "Apparently the destination filesystem doesn't support sparse files.\nYou can overcome this by using the more efficient --save-image option\nof ntfsclone. Use the --restore-image option to restore the image.\n",
      );
    }
    throw new NtfscloneExit(1);
  }
  if (sink.allocatedBlocks() === 0) sink.truncate(0);
}

function statfsType(path: string): number | undefined {
  try {
    // Deno has no statfs: node:fs is loaded for it, only on this error path.
    const f = (nodeFs() as unknown as { statfsSync?: (p: string) => { type: number } })
      .statfsSync;
    return f ? f(path).type : undefined;
  } catch {
    return undefined;
  }
}

/** A 64-bit serial as ntfsclone makes it: two 31-bit random() values, bits 63 and 31 clear. */
function randomSerial(): bigint {
  const r = new Uint32Array(2);
  crypto.getRandomValues(r);
  return (BigInt(r[0]! & 0x7fffffff) << 32n) | BigInt(r[1]! & 0x7fffffff);
}

/**
 * Returns the --new-serial/--new-half-serial transform of a cluster copied at `lcn` (cluster 0,
 * or the backup boot cluster), as ntfsclone applies it, or undefined when it does not apply.
 */
export function serialPatcher(
  run: NtfscloneRun,
  cs: number,
  deviceSize: number,
  serial: bigint,
  print = true,
): (offset: number, data: Uint8Array) => void {
  let bps = 512;
  return (offset, data) => {
    const lcn = Math.floor(offset / cs);
    const backup = (lcn + 1) * cs >= deviceSize;
    if (lcn !== 0 && !backup) return;
    let at: number;
    if (lcn === 0) {
      bps = data[0x0b]! | (data[0x0c]! << 8);
      if (bps > cs || bps < 512) bps = 512;
      at = 0;
    } else at = data.length - bps;
    if (at < 0 || at + 0x50 > data.length) return;
    const v = new DataView(data.buffer, data.byteOffset + at);
    if (run.opts.newSerial & 2) v.setBigUint64(0x48, serial, true);
    else {
      const lo = v.getUint32(0x48, true);
      v.setBigUint64(0x48, (serial & ~0xffffffffn) | BigInt(lo), true);
    }
    if (lcn === 0 && print) {
      run.out.write(`New serial number      : 0x${v.getBigUint64(0x48, true).toString(16)}\n`);
    }
  };
}

/** Prints the scan progress for MFT records `from..to`. */
function scanProgress(p: NtfsProgress, from: number, to: number): void {
  for (let i = from; i <= to; i++) p.update(i);
}

/** Scans the volume: "Scanning volume ..." with its progress, then the duplicate checks. */
export function scanVolume(
  run: NtfscloneRun,
  vol: NtfsVolume,
  note?: { inode: number; text: string },
  onInode?: (inode: NtfsWalkInode) => void,
): NtfsScan {
  const { out, opts } = run;
  out.write("Scanning volume ...\n");
  const last = vol.recordCount - 1;
  const p = new NtfsProgress(out, last, opts.quiet);
  let reached = -1;
  let scan: NtfsScan;
  try {
    scan = vol.scan({
      ...(onInode ? { onInode } : {}),
      onRecord: (r) => (reached = r),
      ...libntfsLogHooks(run),
    });
  } catch (e) {
    scanProgress(p, 0, reached);
    if (e instanceof CorruptImageError && e.details.structure === "runlist") {
      if (e.details.compat) run.ctx.stderr.write(`${e.details.compat}\n`);
      if (run.ctx.debug) run.ctx.stderr.write(`${e.message}\n`);
      perrExit(run, "ntfs_decompress_mapping_pairs", "EIO");
    }
    if (e instanceof CorruptImageError) {
      errExit(run, `${e.details.compat ?? e.message}\n`);
    }
    if (e instanceof FsimageError) errExit(run, `${e.message}\n`);
    throw e;
  }
  let printed = -1;
  const events: { inode: number; text?: string; dup?: NtfsScan["duplicates"][number] }[] = scan
    .duplicates.map((d) => ({ inode: d.inode, dup: d }));
  if (note) {
    const at = events.findIndex((e) => e.inode > note.inode);
    events.splice(at < 0 ? events.length : at, 0, note);
  }
  for (const { inode, text, dup: d } of events) {
    scanProgress(p, printed + 1, inode);
    printed = inode;
    if (text !== undefined) {
      out.write(text);
      continue;
    }
    if (!d) continue;
    if (!opts.ignoreFsCheck) {
      errExit(
        run,
        `Cluster ${d.start} referenced twice!\nYou didn't shutdown your Windows properly?\n`,
      );
    }
    for (let c = d.start; c < d.start + d.count; c++) {
      out.write(`Cluster ${c} is referenced twice!\n`);
    }
  }
  scanProgress(p, printed + 1, last);
  return scan;
}

/**
 * compare_bitmaps: prints the accounting mismatches and fails unless --ignore-fs-check.
 * `copyExtra` is called (with ntfsclone's placement) for the extra clusters when they are
 * copied in this pass.
 */
export function accountClusters(run: NtfscloneRun, scan: NtfsScan, announce = true): void {
  const { out, opts } = run;
  if (announce) out.write("Accounting clusters ...\n");
  for (const m of scan.mismatches) {
    out.write(
      `Cluster accounting failed at ${m.cluster} (0x${
        m.cluster.toString(16)
      }): ${m.kind} cluster in $Bitmap\n`,
    );
  }
  if (scan.bitmapTooShort && !scan.mismatchCount) {
    errExit(
      run,
      `$Bitmap size is smaller than expected (${scan.bitmapTooShort.found} < ${scan.bitmapTooShort.expected})\n`,
    );
  }
  if (scan.mismatchCount) {
    out.write(`Totally ${scan.mismatchCount} cluster accounting mismatches.\n`);
    if (opts.ignoreFsCheck) {
      out.write("WARNING: The NTFS inconsistency was overruled by the --ignore-fs-check option.\n");
      return;
    }
    errExit(
      run,
      "Filesystem check failed! Windows wasn't shutdown properly or inconsistent\nfilesystem. Please run chkdsk /f on Windows then reboot it TWICE.\n",
    );
  }
}

/** ignore_bad_clusters' failure to look up $BadClus:$Bad: libntfs's lines, then the exit. */
export function badClusterLookup(run: NtfscloneRun, scan: NtfsScan): void {
  const e = scan.badClusterError;
  if (!e) return;
  for (const line of e.lines) run.ctx.stderr.write(`${line}\n`);
  perrExit(run, "ntfs_attr_open", e.code);
}

/** check_dest_free_space for a regular file output. */
/**
 * The free space of the output's file system, taken while the output's path may still be
 * looked at (before the permissions are dropped); undefined when it does not apply or cannot
 * be known.
 */
function destinationFree(run: NtfscloneRun, sink: FdSink): number | undefined {
  const { opts } = run;
  if (opts.metadata || opts.blkdevOut || opts.stdOut || sink.kind !== "file") return undefined;
  // Deno has no statfs of its own: this loads node:fs (only for a regular file output).
  const f = (nodeFs() as unknown as {
    statfsSync?: (p: string) => { bsize: number; bfree: number };
  }).statfsSync;
  if (!f) return undefined;
  try {
    const st = f(opts.output!);
    return st.bsize * st.bfree;
  } catch {
    return undefined;
  }
}

function checkFreeSpace(run: NtfscloneRun, free: number | undefined, bytes: number): void {
  if (free !== undefined && free < bytes) {
    errExit(
      run,
      `Destination doesn't have enough free space: ${megabytes(free)} MB < ${
        megabytes(bytes)
      } MB\n`,
    );
  }
}

/**
 * Reads `buf.length` bytes at `offset` of the volume as read_rescue does: on an I/O error,
 * either the bad-sector box and exit, or (--rescue) a sector-by-sector re-read.
 */
export function rescueRead(
  run: NtfscloneRun,
  vol: NtfsVolume,
  offset: number,
  buf: Uint8Array,
): void {
  try {
    const n = vol.source.readAt(offset, buf);
    if (n === buf.length) return;
    throw new ReadError(vol.source.name, offset + n, buf.length - n, "Input/output error");
  } catch (e) {
    if (!(e instanceof ReadError)) throw e;
  }
  const cs = vol.clusterSize;
  for (let p = 0; p < buf.length; p += cs) {
    const c = buf.subarray(p, Math.min(p + cs, buf.length));
    let ok = false;
    try {
      ok = vol.source.readAt(offset + p, c) === c.length;
    } catch (e) {
      if (!(e instanceof ReadError)) throw e;
    }
    if (ok) continue;
    if (!run.opts.rescue) diskFaulty(run);
    rescueCluster(run, vol.source, offset + p, c, vol.boot.bytesPerSector);
  }
}

/** Re-reads a cluster sector by sector, marking unreadable sectors as ntfsclone does. */
function rescueCluster(
  run: NtfscloneRun,
  src: Source,
  offset: number,
  data: Uint8Array,
  bps: number,
): void {
  const magic = new TextEncoder().encode("BadSectoR\0");
  for (let i = 0; i < data.length; i += bps) {
    const sec = data.subarray(i, Math.min(i + bps, data.length));
    let ok = false;
    try {
      ok = src.readAt(offset + i, sec) === sec.length;
    } catch (e) {
      if (!(e instanceof ReadError)) throw e;
    }
    if (!ok) {
      run.out.write(`WARNING: Can't read sector at ${offset + i}, lost data.\n`);
      sec.fill(0x3f);
      sec.set(magic.subarray(0, Math.min(magic.length, sec.length)));
    }
  }
}

/** Prints the bad-sector box and "Disk is faulty" (no newline), and stops with status 1. */
export function diskFaulty(run: NtfscloneRun): never {
  run.out.write(BAD_SECTORS_WARNING);
  errExit(run, "Disk is faulty, can't make full backup!");
}

/** The plain clone and the special image of a volume (not -m). */
function cloneNtfs(
  run: NtfscloneRun,
  vol: NtfsVolume,
  scan: NtfsScan,
  sink: Sink,
  deviceSize: number,
): void {
  const { opts, out } = run;
  const cs = vol.clusterSize, nr = vol.nrClusters;
  out.write(opts.saveImage ? "Saving NTFS to image ...\n" : "Cloning NTFS ...\n");
  const serial = opts.newSerial ? randomSerial() : 0n;
  const rawStdout = opts.stdOut && !opts.saveImage;
  const stop = (rawStdout ? nr : scan.inuse) + 1;
  const p = new NtfsProgress(out, stop, opts.quiet);
  // The extra clusters of an inconsistent $Bitmap are copied first under --ignore-fs-check.
  const used: BlockExtent[] = scan.used;
  // counter of a used cluster = used clusters up to and including it (or the cluster + 1).
  const prefix: number[] = [];
  let acc = 0;
  for (const e of used) {
    prefix.push(acc);
    acc += e.count;
  }
  const counterOf = (lcn: number): number => {
    if (rawStdout) return lcn + 1;
    let lo = 0, hi = used.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (used[mid]!.start <= lcn) lo = mid;
      else hi = mid - 1;
    }
    return prefix[lo]! + (lcn - used[lo]!.start) + 1;
  };
  const patch = opts.newSerial && !opts.saveImage
    ? serialPatcher(run, cs, deviceSize, serial)
    : undefined;
  const bad = new Set<number>();
  const src = vol.source;
  const bps = vol.boot.bytesPerSector;
  const onCluster = (offset: number, data: Uint8Array) => {
    const lcn = Math.floor(offset / cs);
    p.advanceTo(counterOf(lcn));
    if (bad.has(offset)) rescueCluster(run, src, offset, data, bps);
    patch?.(offset, data);
  };
  // Under -q the progress prints nothing: the per-cluster hook only matters for a new serial
  // (and, in a raw clone, for the clusters --rescue re-reads).
  const eachCluster = !opts.quiet || patch !== undefined;
  const onReadError = (offset: number): boolean => {
    p.advanceTo(counterOf(Math.floor(offset / cs)));
    if (!opts.rescue) diskFaulty(run);
    bad.add(offset);
    return true;
  };
  // --ignore-fs-check: the clusters only $Bitmap claims are checked again and copied first.
  const extra = opts.ignoreFsCheck && scan.extra.length ? scan.extra : [];
  if (extra.length) accountClusters(run, scan);
  if (opts.saveImage) {
    const header = createNtfscloneHeader({
      clusterSize: cs,
      deviceSize,
      nrClusters: nr,
      inuse: scan.inuse,
    });
    if (extra.length) {
      saveWithExtras(run, vol, sink, header, used, extra, onCluster);
    } else {
      saveImage(src, sink, used, header, {
        ...(eachCluster ? { transform: onCluster } : {}),
        onReadError: (_e, offset, cluster) => {
          onReadError(offset);
          bad.delete(offset);
          rescueCluster(run, src, offset, cluster, bps);
          return true;
        },
      });
    }
  } else {
    const backupLen = Math.min(cs, deviceSize - nr * cs);
    const extents = [];
    for (const e of used) {
      const off = e.start * cs;
      let len = e.count * cs;
      if (e.start + e.count > nr) len -= cs - backupLen;
      if (len > 0) extents.push({ offset: off, length: len });
    }
    const end = nr * cs + Math.max(0, backupLen);
    if (extra.length && sink.kind !== "stream") {
      copyExtents(src, sink, extra.map((e) => ({ offset: e.start * cs, length: e.count * cs })), {
        size: end,
        setLength: "none",
        blockSize: cs,
        skipZeroBlocks: false,
        onReadError: (_e, offset) => onReadError(offset),
        transform: (offset, data) => {
          if (bad.delete(offset)) rescueCluster(run, src, offset, data, bps);
        },
      });
    }
    copyExtents(src, sink, extents, {
      size: end,
      blockSize: cs,
      skipZeroBlocks: false,
      ...(eachCluster || opts.rescue ? { transform: onCluster } : {}),
      onReadError: (_e, offset) => onReadError(offset),
    });
  }
}

/** The image stream with the --ignore-fs-check extras first (GAP, NEXTs, GAP back to 0). */
function saveWithExtras(
  run: NtfscloneRun,
  vol: NtfsVolume,
  sink: Sink,
  header: ReturnType<typeof createNtfscloneHeader>,
  used: readonly BlockExtent[],
  extra: readonly BlockExtent[],
  onCluster: (offset: number, data: Uint8Array) => void,
): void {
  const cs = vol.clusterSize, dev = header.deviceSize;
  const w = new NtfscloneImageWriter(sink, header);
  const copy = (start: number, count: number, each: boolean) => {
    const per = Math.max(1, Math.floor((4 << 20) / cs));
    for (let lcn = start; lcn < start + count;) {
      const n = Math.min(per, start + count - lcn);
      const len = Math.min(n * cs, dev - lcn * cs);
      const b = new Uint8Array(len);
      rescueRead(run, vol, lcn * cs, b);
      if (each) {
        for (let p = 0; p < len; p += cs) {
          onCluster(lcn * cs + p, b.subarray(p, Math.min(p + cs, len)));
        }
      }
      w.clusters(b);
      lcn += n;
    }
  };
  for (const e of extra) {
    if (e.start !== w.position) w.gap(e.start - w.position);
    copy(e.start, e.count, false);
  }
  if (w.position) w.gap(-w.position);
  for (const e of used) {
    if (e.start > w.position) w.gap(e.start - w.position);
    copy(e.start, e.count, true);
  }
  w.finish();
}

/** Restores an image (-r). */
async function restoreImage(run: NtfscloneRun): Promise<number> {
  const opened: Array<{ close(): void }> = [];
  try {
    return await restoreImageWith(run, opened);
  } finally {
    for (const f of opened) f.close();
  }
}

async function restoreImageWith(
  run: NtfscloneRun,
  opened: Array<{ close(): void }>,
): Promise<number> {
  const { opts, out, ctx } = run;
  let input: ReaderSync;
  let name = opts.source;
  if (opts.source === "-") {
    const s = stdinSource();
    name = "stdin";
    if (s instanceof FdSource) {
      let pos = 0;
      input = {
        readSync(p: Uint8Array) {
          const n = s.readAt(pos, p);
          pos += n;
          return n === 0 ? null : n;
        },
      };
    } else input = s;
  } else {
    const why = explainMissing(opts.source, "read");
    if (why) {
      ctx.stderr.write(`${ctx.programName}: ${why}\n`);
      return 1;
    }
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(opts.source, { read: true });
      opened.push(file);
    } catch (e) {
      perrExit(run, "failed to open image", errCode(e));
    }
    input = {
      readSync(p: Uint8Array) {
        let n: number;
        try {
          n = file.readSync(p) ?? 0;
        } catch (e) {
          throw new ReadError(name, 0, p.length, String(errCode(e) ?? e), { cause: e });
        }
        return n === 0 ? null : n;
      },
    };
  }
  let reader: NtfscloneImageReader;
  try {
    reader = new NtfscloneImageReader(input, { name });
  } catch (e) {
    return imageError(run, e);
  }
  const h = reader.header;
  let sink: Sink | undefined;
  let written: Sink | undefined; // the output itself, for the final sync
  if (!opts.noAction) {
    const fd = openOutput(run, false);
    opened.push(fd);
    if (!opts.stdOut) checkOutputDevice(run, fd, h.nrClusters * h.clusterSize + 512);
    sink = written = withWriteback(fd);
  }
  dropAllPermissionsUnlessTest(run);
  out.write(
    `Ntfsclone image version: ${
      h.majorVersion < 10 ? "10.1" : `${h.majorVersion}.${h.minorVersion}`
    }\n`,
  );
  out.write(`Cluster size           : ${h.clusterSize} bytes\n`);
  out.write(volumeSizeLine("Image volume size      ", h.nrClusters * h.clusterSize));
  out.write(`Image device size      : ${h.deviceSize} bytes\n`);
  out.write(diskUsageLine("    ", h.clusterSize, h.nrClusters, h.inuse));
  const off = h.majorVersion < 10 ? 56 : h.offsetToImageData;
  out.write(`Offset to image data   : ${off} (0x${off.toString(16)}) bytes\n`);
  out.write("Restoring NTFS from image ...\n");
  // ntfsclone treats stdout as a stream even when it is redirected to a file.
  if (sink && opts.stdOut && sink.kind !== "stream") sink = asStream(sink);
  const stop = opts.stdOut ? h.nrClusters + 1 : h.inuse + 1;
  const p = new NtfsProgress(out, stop, opts.quiet);
  const serial = opts.newSerial ? randomSerial() : 0n;
  let target: Sink | null = sink ?? null;
  if (opts.newSerial && sink) {
    const patch = serialPatcher(run, h.clusterSize, h.deviceSize, serial);
    const inner = sink;
    target = {
      name: inner.name,
      kind: inner.kind,
      get size() {
        return inner.size;
      },
      writeAt(offset: number, data: Uint8Array) {
        const cs = h.clusterSize;
        for (let o = 0; o < data.length; o += cs) {
          const lcn = Math.floor((offset + o) / cs);
          if (lcn === 0 || (lcn + 1) * cs >= h.deviceSize) {
            const copy = data.slice(o, Math.min(o + cs, data.length));
            patch(offset + o, copy);
            data = data.slice();
            data.set(copy, o);
          }
        }
        inner.writeAt(offset, data);
      },
      close: () => inner.close(),
    };
  }
  let res;
  try {
    res = restoreNtfsclone(reader, target, {
      dryRun: opts.noAction,
      onProgress: (done) => p.advanceTo(done),
    });
  } catch (e) {
    return imageError(run, e);
  }
  if (res.missingBackupBoot) out.write("Warning : no alternate boot sector in image\n");
  if (written) await syncingAfterWriteback(run, written);
  return 0;
}

/** A view of a positional sink as an append-only stream (writes must come in order). */
function asStream(inner: Sink): Sink {
  let pos = 0;
  return {
    name: inner.name,
    kind: "stream",
    get size() {
      return pos;
    },
    writeAt(offset: number, data: Uint8Array) {
      if (offset !== pos) {
        throw new RangeError(`Stream ${inner.name} written at ${offset}, expected ${pos}`);
      }
      inner.writeAt(offset, data);
      pos += data.length;
    },
    sync: () => inner.sync?.(),
    close: () => inner.close(),
  };
}

function imageError(run: NtfscloneRun, e: unknown): number {
  if (e instanceof NtfscloneExit) return e.status;
  if (e instanceof CorruptImageError || e instanceof UnsupportedFeatureError) {
    const compat = e instanceof CorruptImageError ? e.details.compat : e.compat;
    if (compat === "Short image file..." || compat === undefined) {
      if (run.ctx.debug) run.ctx.stderr.write(`${e.message}\n`);
      run.out.write(
        compat === undefined ? `ERROR: ${e.message}\n` : perrLine("read_all", "ENOENT"),
      );
    } else run.out.write(`ERROR: ${compat}${compat.endsWith("\n") ? "" : "\n"}`);
    return 1;
  }
  if (e instanceof WriteError) {
    if (run.opts.stdOut && errCode(e) === "EPIPE") return 141;
    run.out.write(perrLine("Write failed", errCode(e), "EIO"));
    return 1;
  }
  if (e instanceof ReadError) {
    run.out.write(perrLine("read_all", errCode(e), "EIO"));
    return 1;
  }
  throw e;
}

/** "Syncing ..." and fsync (errors other than EINVAL fail). */
export function syncing(run: NtfscloneRun, sink: Sink): void {
  run.out.write("Syncing ...\n");
  try {
    sink.sync?.();
  } catch (e) {
    const code = errCode(e);
    if (code !== "EINVAL") perrExit(run, "fsync", code);
  }
}

/**
 * The output of a clone, a saved image or a restore, with early writeback when it is a file or
 * a device: ntfsclone ends with fsync, which would otherwise wait for the whole output (Linux
 * starts writing back only when a tenth of the free memory is dirty).
 */
function withWriteback(sink: FdSink): Sink {
  return sink.kind === "stream" ? sink : new WritebackSink(sink);
}

/** {@linkcode syncing} once the background flushes are done (their errors fail it too). */
async function syncingAfterWriteback(run: NtfscloneRun, sink: Sink): Promise<void> {
  // A flush's error is kept by the WritebackSink and thrown again by its sync(), inside syncing.
  if (sink instanceof WritebackSink) await sink.settle().catch(() => {});
  syncing(run, sink);
}

/** Drops every permission once the files are open (not when a test injected the source). */
export function dropAllPermissionsUnlessTest(run: NtfscloneRun): void {
  if (run.source) return;
  try {
    dropAllPermissions();
  } catch {
    // nothing to drop
  }
}

/**
 * `fsimage ntfsclone [OPTIONS] SOURCE`: see the module documentation.
 *
 * @example
 * ```ts ignore
 * import { ntfscloneCommand } from "./ntfsclone.ts";
 * import { defaultContext } from "./context.ts";
 * const status = await ntfscloneCommand(["--save-image", "-o", "vol.img", "vol.raw"], defaultContext("ntfsclone"));
 * ```
 */
export async function ntfscloneCommand(
  args: string[],
  ctx: CommandContext,
  hooks: { source?: Source } = {},
): Promise<number> {
  ctx.stderr.write(NTFSCLONE_BANNER);
  const parsed = parseNtfscloneArgs(args, ctx);
  if ("status" in parsed) return parsed.status;
  const opts = parsed.options;
  const run: NtfscloneRun = {
    opts,
    out: opts.stdOut ? ctx.stderr : ctx.stdout,
    ctx,
    ...(hooks.source ? { source: hooks.source } : {}),
  };
  try {
    if (opts.restoreImage) return await restoreImage(run);
    return await cloneVolume(run);
  } catch (e) {
    if (e instanceof NtfscloneExit) return e.status;
    // ntfsclone dies of SIGPIPE when its stdout reader goes away: the shell reports 128 + 13.
    if (e instanceof WriteError && opts.stdOut && errCode(e) === "EPIPE") return 141;
    if (e instanceof WriteError) {
      run.out.write(
        perrLine("Write failed", errCode(e) ?? (e.code === "NO_SPACE" ? "ENOSPC" : "EIO")),
      );
      return 1;
    }
    if (e instanceof FsimageError) {
      run.out.write(`ERROR: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

async function cloneVolume(run: NtfscloneRun): Promise<number> {
  const { opts, ctx } = run;
  if (!run.source && opts.source !== "-") {
    const why = explainMissing(opts.source, "read");
    if (why) {
      ctx.stderr.write(`${ctx.programName}: ${why}\n`);
      return 1;
    }
  }
  const vol = openNtfsVolume(run, opts.source, run.source);
  const deviceSize = checkDeviceSize(run, vol);
  const image = opts.saveImage || opts.metadataImage;
  const sink = openOutput(run, image);
  try {
    if (!opts.stdOut && !image) {
      checkOutputDevice(run, sink, vol.nrClusters * vol.clusterSize + 512);
    }
    const free = destinationFree(run, sink);
    dropAllPermissionsUnlessTest(run);
    if (opts.metadata) return runMetadataClone(run, vol, sink, deviceSize);
    const scan = scanVolume(run, vol);
    accountClusters(run, scan);
    // Printed (and checked) before the bad clusters are dropped, as ntfsclone does.
    const counted = scan.inuse + scan.badInUse;
    run.out.write(diskUsageLine("", vol.clusterSize, vol.nrClusters, counted));
    checkFreeSpace(run, free, vol.clusterSize * counted);
    badClusterLookup(run, scan);
    if (scan.badClusters) {
      run.out.write(
        `WARNING: The disk has ${scan.badClusters} or more bad sectors (hardware faults).\n`,
      );
    }
    const target = withWriteback(sink);
    cloneNtfs(run, vol, scan, target, deviceSize);
    await syncingAfterWriteback(run, target);
    return 0;
  } finally {
    sink.close();
  }
}
