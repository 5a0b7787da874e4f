/**
 * `fsimage e2image`: a drop-in replacement for e2image 1.47.0 — the same options, messages,
 * exit statuses and output bytes — that copies metadata in large batches and holds no
 * permission once its files are open. Deliberate differences are listed in
 * docs/compat/e2image.md.
 *
 * @module
 */
import { nodeFs } from "../_internal/node_builtin.ts";
import type { CommandContext } from "./context.ts";
import { getopt, strtoull } from "./e2image_getopt.ts";
import { E2imageProgress, type SecondsClock, systemSeconds } from "./e2image_progress.ts";
import {
  type BlockScrambler,
  type E2imageVolume,
  newScrambler,
  openE2imageVolume,
} from "./e2image_volume.ts";
import {
  dropAllPermissions,
  explainMissing,
  isSpecialPath,
  type MountEntry,
  readMountTable,
} from "./permissions.ts";
import {
  copyExtents,
  fdHandle,
  FdSink,
  FdSource,
  type FileHandle,
  fileHandle,
  openFileHandle,
  OverlaySource,
  type Sink,
  type Source,
  WindowSink,
} from "../io/mod.ts";
import { WindowSource } from "../io/window.ts";
import { type BlockExtent, blocksToBytes } from "../_internal/extents.ts";
import { isZero } from "../_internal/bytes.ts";
import {
  CorruptImageError,
  FsimageError,
  LimitExceededError,
  ReadError,
  UnsupportedFeatureError,
  WriteError,
} from "../errors.ts";
import { probeQcow2, Qcow2Reader, writeQcow2 } from "../qcow2/mod.ts";
import { scrubExt } from "../ext/scrub.ts";
import { unixPastEndMessage } from "../ext/mod.ts";
import { probeOtherFilesystem } from "./e2image_probe.ts";
import { writeNormalImage } from "../e2image/normal.ts";
import { installNormalImage } from "../e2image/install.ts";

/** The version banner e2image prints first, on stderr. */
export const E2IMAGE_BANNER = "e2image 1.47.0 (5-Feb-2023)\n";

const OPTSTRING = "b:B:nrsIQafo:O:pc";
const NO_BLK = "18446744073709551615";
const RAW = 1;
const QCOW2 = 2;

/** The usage text for `argv0`. */
export function e2imageUsage(argv0: string): string {
  return `Usage: ${argv0} [ -r|-Q ] [ -f ] [ -b superblock ] [ -B blocksize ] device image-file\n` +
    `       ${argv0} -I device image-file\n` +
    `       ${argv0} -ra [ -cfnp ] [ -o src_offset ] [ -O dest_offset ] src_fs [ dest_fs ]\n`;
}

/** Injectable parts of the environment, for tests. */
export interface E2imageRuntime {
  /** time(NULL), for `-p` and the normal image header. */
  clock?: SecondsClock;
  /** gethostname(); default: Deno.hostname() when permitted, else "". */
  hostname?: () => string;
  /** The mount table; default: readMountTable() (undefined when it cannot be read). */
  mountTable?: () => MountEntry[] | undefined;
  /** Revoke permissions once the files are open (default true). */
  dropPermissions?: boolean;
  /** Wraps the opened source, e.g. in a FaultySource to test read errors. */
  wrapSource?: (source: Source) => Source;
}

/** Ends the command with a status after its message has been printed. */
class Exit extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`exit ${status}`);
    this.status = status;
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "No such file or directory",
  EISDIR: "Is a directory",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  ENOTDIR: "Not a directory",
  EROFS: "Read-only file system",
  ENOSPC: "No space left on device",
  EBUSY: "Device or resource busy",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long",
  ENXIO: "No such device or address",
  ENODEV: "No such device",
  EIO: "Input/output error",
  ESPIPE: "Illegal seek",
  EFBIG: "File too large",
  EINVAL: "Invalid argument",
  ETXTBSY: "Text file busy",
};

/** strerror() of a runtime (Deno or node:fs) error. */
function strerror(e: unknown): string {
  const code = (e as { code?: string })?.code;
  if (code && ERRNO_TEXT[code]) return ERRNO_TEXT[code]!;
  const c = (e as { cause?: unknown })?.cause;
  if (c && c !== e) return strerror(c);
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/: \w+ '.*'$/, "").replace(/\s*\(os error \d+\)$/, "").replace(/^[A-Z]+: /, "")
    .replace(/, \w+ '.*$/, "");
}

/** libext2fs's wording of a library error, for "<msg> while trying to open X". */
function compatMessage(e: unknown): string {
  if (e instanceof CorruptImageError && e.details.compat) return e.details.compat;
  if (e instanceof UnsupportedFeatureError) {
    return e.compat ?? "Filesystem has unsupported feature(s)";
  }
  const c = (e as { compat?: unknown })?.compat;
  if (typeof c === "string") return c;
  if (e instanceof ReadError) {
    if (/short read|end of data/i.test(e.message)) {
      return "Attempt to read block from filesystem resulted in short read";
    }
    return strerror(e);
  }
  return e instanceof Error ? e.message : String(e);
}

function asNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`${what} ${v} is larger than 2^53`);
  }
  return Number(v);
}

/** Parsed command line. */
interface Parsed {
  imgType: number;
  install: boolean;
  scramble: boolean;
  allData: boolean;
  force: boolean;
  nop: boolean;
  progress: boolean;
  check: boolean;
  superblock: bigint;
  blockSize: bigint;
  srcOffset: bigint;
  dstOffset: bigint;
  moveMode: boolean;
  device: string;
  imageFn: string;
  /** fsimage's `--scrub`: wipe what could identify people or data before imaging. */
  privacyScrub: boolean;
}

/**
 * Runs `e2image ARGS` and returns the exit status. Messages use `ctx.programName` as argv[0].
 *
 * @example
 * ```ts ignore
 * import { e2imageCommand } from "./e2image.ts";
 * import { BufferWriter } from "./context.ts";
 * const err = new BufferWriter();
 * const rc = await e2imageCommand(["-r", "fs.img", "out.raw"],
 *   { programName: "e2image", stdout: new BufferWriter(), stderr: err, debug: false });
 * ```
 */
export function e2imageCommand(args: string[], ctx: CommandContext): number {
  return runE2image(args, ctx);
}

/** {@linkcode e2imageCommand} with an injectable runtime (clock, hostname, mount table). */
export function runE2image(
  args: string[],
  ctx: CommandContext,
  runtime: E2imageRuntime = {},
): number {
  const cleanups: Array<() => void> = [];
  try {
    return run(args, ctx, runtime, cleanups);
  } catch (e) {
    if (e instanceof Exit) return e.status;
    throw e;
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch {
        // closing twice or after a failure
      }
    }
  }
}

function parse(args: string[], ctx: CommandContext): Parsed {
  const argv0 = ctx.programName;
  const usage = (): never => {
    ctx.stderr.write(e2imageUsage(argv0));
    throw new Exit(1);
  };
  const p: Parsed = {
    imgType: 0,
    install: false,
    scramble: false,
    allData: false,
    force: false,
    nop: false,
    progress: false,
    check: false,
    superblock: 0n,
    blockSize: 0n,
    srcOffset: 0n,
    dstOffset: 0n,
    moveMode: false,
    device: "",
    imageFn: "",
    privacyScrub: false,
  };
  // fsimage's own long option, taken out before e2image's exact getopt sees the rest.
  const end = args.indexOf("--");
  const opts = end < 0 ? args : args.slice(0, end);
  if (opts.includes("--scrub")) {
    p.privacyScrub = true;
    args = [...opts.filter((a) => a !== "--scrub"), ...(end < 0 ? [] : args.slice(end))];
  }
  const r = getopt(args, OPTSTRING);
  for (const ev of r.events) {
    if (ev.kind === "invalid") {
      ctx.stderr.write(`${argv0}: invalid option -- '${ev.option}'\n`);
      usage();
    }
    if (ev.kind === "missing") {
      ctx.stderr.write(`${argv0}: option requires an argument -- '${ev.option}'\n`);
      usage();
    }
    const a = ev.kind === "option" ? ev.argument ?? "" : "";
    switch (ev.option) {
      case "b":
        p.superblock = strtoull(a);
        break;
      case "B":
        p.blockSize = strtoull(a);
        break;
      case "I":
        p.install = true;
        break;
      case "Q":
        if (p.imgType) usage();
        p.imgType |= QCOW2;
        break;
      case "r":
        if (p.imgType) usage();
        p.imgType |= RAW;
        break;
      case "s":
        p.scramble = true;
        break;
      case "a":
        p.allData = true;
        break;
      case "f":
        p.force = true;
        break;
      case "n":
        p.nop = true;
        break;
      case "o":
        p.srcOffset = strtoull(a);
        break;
      case "O":
        p.dstOffset = strtoull(a);
        break;
      case "p":
        p.progress = true;
        break;
      case "c":
        p.check = true;
        break;
    }
  }
  const ops = r.operands;
  if (ops.length === 1 && (p.srcOffset || p.dstOffset)) p.moveMode = true;
  else if (ops.length !== 2) usage();
  const fail = (msg: string): never => {
    ctx.stderr.write(`${argv0}: ${msg}\n`);
    throw new Exit(1);
  };
  if (p.allData && !p.imgType) fail("-a option can only be used with raw or QCOW2 images.");
  if (p.superblock && !p.imgType) fail("-b option can only be used with raw or QCOW2 images.");
  if ((p.srcOffset || p.dstOffset) && p.imgType !== RAW) {
    fail("Offsets are only allowed with raw images.");
  }
  if (p.moveMode && p.imgType !== RAW) fail("Move mode is only allowed with raw images.");
  if (p.moveMode && !p.allData) fail("Move mode requires all data mode.");
  p.device = ops[0]!;
  p.imageFn = p.moveMode ? p.device : ops[1]!;
  return p;
}

/** Is `device` mounted, and read-only? Compares paths, device numbers and loop backing files. */
function mountState(
  device: string,
  table: MountEntry[],
): { mounted: boolean; readOnly: boolean } {
  let real = device;
  let rdev = -1;
  let isFile = false;
  try {
    real = Deno.realPathSync(device === "-" ? "/proc/self/fd/0" : device);
    if (device === "-") {
      const st = nodeFs().fstatSync(0);
      if (st.isBlockDevice()) rdev = st.rdev;
      isFile = st.isFile();
    } else {
      const st = Deno.statSync(real);
      if (st.isBlockDevice) rdev = st.rdev ?? 0;
      isFile = st.isFile;
    }
  } catch {
    return { mounted: false, readOnly: false };
  }
  const backing = new Map<string, string>();
  const loopBacking = (dev: string): string | undefined => {
    const m = /^\/dev\/(loop\d+)$/.exec(dev);
    if (!m) return undefined;
    if (!backing.has(dev)) {
      try {
        backing.set(
          dev,
          Deno.readTextFileSync(`/sys/block/${m[1]}/loop/backing_file`).trim(),
        );
      } catch {
        backing.set(dev, "");
      }
    }
    return backing.get(dev);
  };
  let found: { mounted: boolean; readOnly: boolean } = { mounted: false, readOnly: false };
  for (const m of table) {
    let hit = m.device === device || m.device === real;
    if (!hit && rdev >= 0 && m.device.startsWith("/")) {
      try {
        const st = Deno.statSync(m.device);
        hit = st.isBlockDevice === true && (st.rdev ?? 0) === rdev;
      } catch {
        // not a path
      }
    }
    if (!hit && isFile) hit = loopBacking(m.device) === real;
    if (hit) {
      found = { mounted: true, readOnly: m.readOnly };
      if (!m.readOnly) break;
    }
  }
  return found;
}

function hostName(runtime: E2imageRuntime): string {
  if (runtime.hostname) return runtime.hostname();
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
      return "";
    }
    return Deno.hostname();
  } catch {
    return "";
  }
}

function run(
  args: string[],
  ctx: CommandContext,
  runtime: E2imageRuntime,
  cleanups: Array<() => void>,
): number {
  const argv0 = ctx.programName;
  ctx.stderr.write(E2IMAGE_BANNER);
  const p = parse(args, ctx);
  const fail = (msg: string): never => {
    ctx.stderr.write(`${argv0}: ${msg}\n`);
    throw new Exit(1);
  };
  const clock = runtime.clock ?? systemSeconds;

  // Permissions first: say exactly which flag is missing, before touching anything.
  const need: Array<[string, "read" | "write"]> = [];
  if (p.install) {
    need.push([p.imageFn, "read"], [p.device, "read"], [p.device, "write"]);
  } else {
    need.push([p.device, "read"]);
    if (p.moveMode) need.push([p.device, "write"]);
    else if (p.imageFn !== "-") {
      need.push([p.imageFn, "write"]);
      if (p.check) need.push([p.imageFn, "read"]);
    }
  }
  for (const [path, access] of need) {
    if (path === "-") continue;
    const why = explainMissing(path, access);
    if (why) fail(why);
  }

  // The mount check (libext2fs's ext2fs_check_if_mounted).
  {
    const table = (runtime.mountTable ?? readMountTable)();
    if (table === undefined) {
      let dev = false;
      try {
        dev = p.device === "-"
          ? nodeFs().fstatSync(0).isBlockDevice()
          : isSpecialPath(p.device) || Deno.statSync(p.device).isBlockDevice === true;
      } catch {
        dev = p.device !== "-" && isSpecialPath(p.device);
      }
      if (dev) {
        const what = p.device === "-" ? "standard input" : p.device;
        ctx.stderr.write(
          `${argv0}: cannot read the mount table without -A; skipped the check whether ${what} is mounted\n`,
        );
      }
    } else {
      const st = mountState(p.device, table);
      if (p.imgType && !p.force && st.mounted && !st.readOnly) {
        ctx.stderr.write(
          "\nRunning e2image on a R/W mounted filesystem can result in an\n" +
            "inconsistent image which will not be useful for debugging purposes.\n" +
            "Use -f option if you really want to do that.\n",
        );
        throw new Exit(1);
      }
    }
  }

  if (p.install) {
    if (p.imgType) fail("Raw and qcow2 images cannot be installed");
    return install(p, ctx, runtime, cleanups);
  }

  // Open the source (a path, or "-" for standard input) and the filesystem on it.
  let rawSource: FdSource;
  try {
    if (p.device === "-") {
      rawSource = new FdSource(fdHandle(0), "stdin", { owned: false });
    } else {
      const file = Deno.openSync(p.device, { read: true });
      cleanups.push(() => file.close());
      rawSource = new FdSource(fileHandle(file), p.device, { owned: false });
    }
  } catch (e) {
    ctx.stderr.write(`${argv0}: ${strerror(e)} while trying to open ${p.device}\n`);
    ctx.stdout.write("Couldn't find valid filesystem superblock.\n");
    throw new Exit(1);
  }
  const srcOffset = asNumber(p.srcOffset, "Source offset");
  const opened: Source = runtime.wrapSource ? runtime.wrapSource(rawSource) : rawSource;
  let source: Source = srcOffset ? new WindowSource(opened, srcOffset) : opened;

  // e2image -r with a QCOW2 file as input converts it back to raw. The real tool reads only
  // version 2; fsimage reads every version qemu-img writes (compressed clusters included).
  // In every other mode a QCOW2 image is a source like any other: the filesystem inside it is
  // imaged, as from a device.
  let qcowInput: Qcow2Reader | undefined;
  let qcowFailure: FsimageError | undefined;
  const probe = probeQcow2(rawSource);
  if (probe) {
    try {
      const reader = Qcow2Reader.open(rawSource);
      if (p.imgType === RAW) qcowInput = reader;
      else source = srcOffset ? new WindowSource(reader, srcOffset) : reader;
    } catch (e) {
      if (!(e instanceof FsimageError)) throw e;
      if (p.imgType === RAW) qcowFailure = e;
    }
  }

  let volume: E2imageVolume | undefined;
  if (!qcowInput && !qcowFailure) {
    try {
      if (p.superblock && !p.blockSize) {
        throw new CorruptImageError("A backup superblock needs its block size (-B)", {
          compat: "Invalid argument passed to ext2 library",
        });
      }
      if (p.privacyScrub) {
        if (p.install) fail("--scrub makes images; it cannot be used with -I");
        // Scrub a copy-on-write view of the source: the source is never written.
        const overlay = new OverlaySource(source, { blockSize: 1024 });
        scrubExt(overlay, { wipeData: !p.allData });
        source = overlay;
      }
      // libext2fs takes the superblock number as an int.
      const sbNum = Number(BigInt.asIntN(32, p.superblock));
      // A read past the end fails as Linux's unix_io makes it fail for this kind of source.
      const kind = source instanceof Qcow2Reader ? "file" : rawSource.kind;
      volume = openE2imageVolume(source, {
        pastEndMessage: (off) => unixPastEndMessage(kind, off + srcOffset),
        ...(sbNum ? { superblock: sbNum } : {}),
        ...(p.blockSize ? { blockSize: Number(BigInt.asUintN(32, p.blockSize)) } : {}),
      });
    } catch (e) {
      if (!(e instanceof FsimageError) && !(e as { compat?: string })?.compat) throw e;
      const why = compatMessage(e);
      ctx.stderr.write(`${argv0}: ${why} while trying to open ${p.device}\n`);
      ctx.stdout.write("Couldn't find valid filesystem superblock.\n");
      if (why === "Bad magic number in super-block") {
        const other = probeOtherFilesystem(rawSource);
        if (other) {
          ctx.stdout.write(
            other.label
              ? `${p.device} contains a ${other.type} file system labelled '${other.label}'\n`
              : `${p.device} contains a ${other.type} file system\n`,
          );
        }
      }
      throw new Exit(1);
    }
  }

  // Open the output: raw images overlay an existing file, the others replace it.
  let sink: FdSink;
  let created = false;
  if (p.imageFn === "-") {
    sink = new FdSink(fdHandle(1), "stdout", { owned: false });
  } else if (p.moveMode) {
    try {
      const file = Deno.openSync(p.imageFn, { read: true, write: true });
      cleanups.push(() => file.close());
      sink = new FdSink(fileHandle(file), p.imageFn, { owned: false });
    } catch (e) {
      return fail(`${strerror(e)} while trying to open ${p.imageFn}`);
    }
  } else {
    // Read-write as e2image opens it; write-only when Deno grants only --allow-write here.
    let read = true;
    try {
      if (Deno.permissions.querySync({ name: "read", path: p.imageFn }).state !== "granted") {
        read = false;
      }
    } catch {
      // keep O_RDWR
    }
    const how: Deno.OpenOptions = {
      read,
      write: true,
      create: true,
      truncate: p.imgType !== RAW,
      mode: 0o600,
    };
    try {
      let file: FileHandle;
      try {
        file = openFileHandle(p.imageFn, { ...how, createNew: true });
        created = true;
      } catch (e) {
        if ((e as { code?: string })?.code !== "EEXIST") throw e;
        file = openFileHandle(p.imageFn, how);
      }
      cleanups.push(() => file.close());
      sink = new FdSink(file, p.imageFn, { owned: false, created });
    } catch (e) {
      return fail(`${strerror(e)} while trying to open ${p.imageFn}`);
    }
  }
  const host = {
    hostname: hostName(runtime),
    deviceName: p.device,
    fsDevice: p.device === "-" ? 0 : rawSource.info.rdev,
    imageDevice: sink.info.dev,
    imageInode: sink.info.ino,
    time: clock(),
  };
  if (runtime.dropPermissions !== false) dropAllPermissions();

  // Past this point a failure must not leave a new output that looks complete.
  let ok = false;
  if (created) {
    const made = sink;
    cleanups.push(() => {
      if (!ok) made.truncate(0);
    });
  }

  const dstOffset = asNumber(p.dstOffset, "Destination offset");
  if (dstOffset && sink.kind === "stream") {
    ctx.stderr.write("seek_set: Illegal seek\n");
    throw new Exit(1);
  }
  if (p.imgType & QCOW2 && p.imageFn === "-") {
    fail("QCOW2 image can not be written to the stdout!\n");
  }
  const outputIsDevice = sink.kind === "device";
  if (qcowInput || qcowFailure) {
    const convFail = (why: string): never =>
      fail(
        `${why} while trying to convert qcow2 image (${p.imageFn}) into raw image (${p.device})`,
      );
    if (qcowFailure || !qcowInput) {
      const e = qcowFailure;
      const kind = e instanceof UnsupportedFeatureError
        ? (/encrypt/i.test(e.feature)
          ? "encrypted"
          : /compress/i.test(e.feature)
          ? "compressed"
          : "")
        : e instanceof CorruptImageError || e instanceof LimitExceededError
        ? "corrupted"
        : "";
      if (kind) {
        ctx.stderr.write(`Image (${p.imageFn}) is ${kind}\n`);
        throw new Exit(1);
      }
      return convFail(e ? e.message : "Invalid argument");
    }
    try {
      qcowToRaw(qcowInput, sink, created);
    } catch (e) {
      if (!(e instanceof FsimageError)) throw e;
      return convFail(strerror((e as { cause?: unknown }).cause ?? e));
    }
    ok = true;
    return 0;
  }
  if (!volume) throw new Error("unreachable: no filesystem opened");
  if (p.check) {
    if (p.imgType !== RAW) {
      ctx.stderr.write("The -c option only supported in raw mode\n");
      throw new Exit(1);
    }
    if (p.imageFn === "-") {
      ctx.stderr.write("The -c option not supported when writing to stdout\n");
      throw new Exit(1);
    }
  }
  if (p.progress && p.imgType !== RAW) {
    ctx.stderr.write("The -p option only supported in raw mode\n");
    throw new Exit(1);
  }

  try {
    if (!p.imgType) {
      writeNormalImage(volume, sink, {
        host,
        noHeader: p.nop,
        onSkippedHeaderWrite: () => ctx.stdout.write(`Writing block ${NO_BLK}\n`),
      });
      ok = true;
      return 0;
    }
    if (p.imgType === QCOW2) {
      writeQcow(p, ctx, volume, source, sink);
      ok = true;
      return 0;
    }
    const rc = writeRaw(p, ctx, volume, source, sink, {
      created,
      outputIsDevice,
      dstOffset,
      clock,
    });
    ok = true;
    return rc;
  } catch (e) {
    if (e instanceof Exit) throw e;
    if (e instanceof CorruptImageError && e.details.compat) {
      const context = (e.details as { context?: string }).context;
      const what = context ??
        (p.imgType ? "while getting next inode" : "while writing inode table");
      return fail(`${e.details.compat} ${what}`);
    }
    if (e instanceof WriteError) {
      const why = strerror(e.cause ?? e);
      if (!p.imgType) return fail(`${why} while writing inode table`);
      const blk = p.imgType === RAW && volume.blockSize
        ? String(Math.floor((e.offset - dstOffset) / volume.blockSize))
        : NO_BLK;
      return fail(`${why} error writing block ${blk}`);
    }
    if (e instanceof FsimageError) return fail(e.message);
    throw e;
  }
}

/** A sink that accepts everything and writes nothing (for `-n` on a stream). */
class NullSink implements Sink {
  readonly name = "null";
  readonly kind = "file" as const;
  size = 0;
  writeAt(): void {}
  close(): void {}
}

function writeRaw(
  p: Parsed,
  ctx: CommandContext,
  volume: E2imageVolume,
  source: Source,
  outSink: FdSink,
  o: { created: boolean; outputIsDevice: boolean; dstOffset: number; clock: SecondsClock },
): number {
  const argv0 = ctx.programName;
  const bs = volume.blockSize;
  const n = volume.blocksCount;
  const size = n * bs;
  const sel = volume.e2imageSelection({
    allData: p.allData,
    scramble: p.scramble,
    outputIsDevice: o.outputIsDevice,
    onWarning: (line) => ctx.stderr.write(line + "\n"),
  });
  if (p.progress) ctx.stderr.write("Scanning inodes...\n");
  // Blocks before s_first_data_block are never copied.
  const blocks = clipBlocks(sel.blocks, volume.firstDataBlock, n);
  const extents = blocksToBytes(blocks, bs);
  const checkZero = o.created && !p.moveMode;
  const stream = outSink.kind === "stream";
  let sink: Sink = o.dstOffset ? new WindowSink(outSink, o.dstOffset) : outSink;
  if (p.nop && (stream || p.imageFn === "-")) sink = new NullSink();

  // -s: scramble directory blocks in ascending block order (a forward copy visits them so).
  const last = blocks.at(-1);
  const lastSelected = last !== undefined && last.start + last.count === n;
  let lastPending = !lastSelected;
  const scrambler: BlockScrambler | undefined = p.scramble ? newScrambler() : undefined;
  const inScramble = scrambleTest(sel.scrambleBlocks);
  const transform = (offset: number, block: Uint8Array) => {
    const blk = offset / bs;
    if (scrambler && inScramble(blk)) {
      scrambler(block, blk, (line) => ctx.stdout.write(line + "\n"));
    }
    if (blk === n - 1 && lastSelected) lastPending = checkZero && isZero(block);
  };

  const progress = p.progress ? new E2imageProgress(ctx.stderr, sel.markCount, bs, o.clock) : null;
  progress?.start();
  let written = 0;
  const moveRight = p.moveMode && p.dstOffset > p.srcOffset;
  const res = copyExtents(source, sink, extents, {
    size,
    blockSize: bs,
    setLength: "none",
    skipZeroBlocks: checkZero && !o.outputIsDevice,
    checkBeforeWrite: p.check,
    dryRun: p.nop,
    direction: moveRight ? "backward" : "forward",
    transform,
    onWrite: p.nop ? (off) => ctx.stdout.write(`Writing block ${off / bs}\n`) : undefined,
    onReadError: (err, off) => {
      const why = /short read|end of/i.test(err.message)
        ? "Attempt to read block from filesystem resulted in short read"
        : strerror(err.cause ?? err);
      ctx.stderr.write(`${argv0}: ${why} error reading block ${off / bs}\n`);
      return true;
    },
    onProgress: progress
      ? (done) => {
        written = done / bs;
        progress.update(written);
      }
      : undefined,
  });
  progress?.finish(written || extentsBlocks(blocks));
  // e2image ends a file whose last block was a hole with ftruncate to the full length; it
  // never shrinks the file in a move (the data after the filesystem is kept).
  if (lastPending && sink.kind === "file" && sink.truncate) {
    if (!p.moveMode || sink.size < size) sink.truncate(size);
  }
  if (p.check) {
    ctx.stdout.write(`${res.blocksIdentical} blocks already contained the data to be copied\n`);
  }
  return 0;
}

/** e2image -Q: the selected blocks as a QCOW2 image (lib/qcow2's clean, deterministic layout). */
function writeQcow(
  p: Parsed,
  ctx: CommandContext,
  volume: E2imageVolume,
  source: Source,
  sink: FdSink,
): void {
  const argv0 = ctx.programName;
  const bs = volume.blockSize;
  const n = volume.blocksCount;
  const sel = volume.e2imageSelection({
    allData: p.allData,
    scramble: p.scramble,
    outputIsDevice: sink.kind === "device",
    onWarning: (line) => ctx.stderr.write(line + "\n"),
  });
  const blocks = clipBlocks(sel.blocks, volume.firstDataBlock, n);
  const extents = blocksToBytes(blocks, bs);
  const scrambler = p.scramble ? newScrambler() : undefined;
  const inScramble = scrambleTest(sel.scrambleBlocks);
  const transform = scrambler
    ? (offset: number, block: Uint8Array) => {
      const blk = offset / bs;
      if (inScramble(blk)) scrambler(block, blk, (line) => ctx.stdout.write(line + "\n"));
    }
    : undefined;
  const onReadError = (_err: ReadError, off: number) => {
    ctx.stderr.write(
      `${argv0}: Attempt to read block from filesystem resulted in short read error reading block ${
        off / bs
      }\n`,
    );
    return true;
  };
  if (p.nop) {
    // -n: report the data blocks that would be stored; nothing is written.
    const buf = new Uint8Array(bs);
    for (const e of extents) {
      for (let off = e.offset; off < e.offset + e.length; off += bs) {
        let got = 0;
        try {
          got = source.readAt(off, buf);
        } catch (err) {
          if (!(err instanceof ReadError)) throw err;
        }
        if (got < bs) {
          onReadError(new ReadError(source.name, off, bs, "short read"), off);
          continue;
        }
        transform?.(off, buf);
        if (!isZero(buf)) ctx.stdout.write(`Writing block ${off / bs}\n`);
      }
    }
    return;
  }
  writeQcow2(source, sink, extents, {
    virtualSize: n * bs,
    clusterSize: bs,
    version: 2,
    // As e2image: all-zero blocks are left out, except on a block device, where every
    // selected block is stored.
    skipZeroClusters: sink.kind !== "device",
    ...(transform ? { transform } : {}),
    onReadError,
  });
}

/** QCOW2 → raw: every allocated cluster at its guest offset; the file is at least the disk size. */
function qcowToRaw(reader: Qcow2Reader, sink: FdSink, created: boolean): void {
  const cs = reader.clusterSize;
  copyExtents(reader, sink, reader.allocatedExtents(), {
    size: reader.size,
    blockSize: cs,
    setLength: "extend",
    skipZeroBlocks: created,
  });
}

function clipBlocks(sel: readonly BlockExtent[], first: number, n: number): BlockExtent[] {
  const blocks: BlockExtent[] = [];
  for (const e of sel) {
    const s = Math.max(e.start, first);
    const end = Math.min(e.start + e.count, n);
    if (end > s) blocks.push({ start: s, count: end - s });
  }
  return blocks;
}

/** A membership test for ascending queries over sorted extents. */
function scrambleTest(extents: readonly BlockExtent[]): (blk: number) => boolean {
  let i = 0;
  return (blk) => {
    if (i > 0 && extents[i - 1]!.start > blk) i = 0;
    while (i < extents.length && extents[i]!.start + extents[i]!.count <= blk) i++;
    const e = extents[i];
    return e !== undefined && e.start <= blk;
  };
}

function extentsBlocks(blocks: readonly BlockExtent[]): number {
  let t = 0;
  for (const b of blocks) t += b.count;
  return t;
}

function install(
  p: Parsed,
  ctx: CommandContext,
  runtime: E2imageRuntime,
  cleanups: Array<() => void>,
): number {
  const argv0 = ctx.programName;
  let image: FdSource;
  try {
    const file = Deno.openSync(p.imageFn, { read: true });
    cleanups.push(() => file.close());
    image = new FdSource(fileHandle(file), p.imageFn, { owned: false });
  } catch (e) {
    ctx.stderr.write(`${argv0}: ${strerror(e)} while trying to open ${p.imageFn}\n`);
    throw new Exit(1);
  }
  let device: FdSink;
  try {
    const file = Deno.openSync(p.device, { read: true, write: true });
    cleanups.push(() => file.close());
    device = new FdSink(fileHandle(file), p.device, { owned: false });
  } catch {
    ctx.stderr.write(`${p.device}: while opening device file\n`);
    throw new Exit(1);
  }
  if (runtime.dropPermissions !== false) dropAllPermissions();
  try {
    installNormalImage(image, device, { time: (runtime.clock ?? systemSeconds)() });
  } catch (e) {
    if (e instanceof CorruptImageError && e.details.compat) {
      ctx.stderr.write(`${argv0}: ${e.details.compat} while trying to open ${p.imageFn}\n`);
      throw new Exit(1);
    }
    if (e instanceof ReadError) {
      ctx.stderr.write(`${p.imageFn}: while restoring the image table\n`);
      throw new Exit(1);
    }
    if (e instanceof FsimageError) {
      ctx.stderr.write(`${argv0}: ${e.message}\n`);
      throw new Exit(1);
    }
    throw e;
  }
  return 0;
}
