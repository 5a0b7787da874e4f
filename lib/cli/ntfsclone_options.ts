/**
 * Command-line parsing of `fsimage ntfsclone`, a faithful copy of ntfsclone 2022.10.3's
 * getopt_long behaviour (short string `-dfhmno:O:qrstV`, in-order non-options, unique long
 * prefixes, glibc's error messages) and its validation order and messages.
 *
 * @module
 */
import { nodeFs } from "../_internal/node_builtin.ts";
import type { CommandContext, TextWriter } from "./context.ts";
import { explainMissing } from "./permissions.ts";

/** The name and version ntfsclone prints first, on stderr. */
export const NTFSCLONE_BANNER = "ntfsclone v2022.10.3 (libntfs-3g)\n";

const BUGS = "Developers' email address: ntfs-3g-devel@lists.sf.net\n";
const HOME = "News, support and information:  https://github.com/tuxera/ntfs-3g/\n";

/** ntfsclone's usage text (without the trailing contact lines). */
export const NTFSCLONE_USAGE = "\nUsage: ntfsclone [OPTIONS] SOURCE\n" +
  "    Efficiently clone NTFS to a sparse file, image, device or standard output.\n" +
  "\n" +
  "    -o, --output FILE      Clone NTFS to the non-existent FILE\n" +
  "    -O, --overwrite FILE   Clone NTFS to FILE, overwriting if exists\n" +
  "    -s, --save-image       Save to the special image format\n" +
  "    -r, --restore-image    Restore from the special image format\n" +
  "        --rescue           Continue after disk read errors\n" +
  "    -m, --metadata         Clone *only* metadata (for NTFS experts)\n" +
  "    -n, --no-action        Test restoring, without outputting anything\n" +
  "        --ignore-fs-check  Ignore the filesystem check result\n" +
  "        --new-serial       Set a new serial number\n" +
  "        --new-half-serial  Set a partial new serial number\n" +
  "    -t, --preserve-timestamps Do not clear the timestamps\n" +
  "    -q, --quiet            Do not display any progress bars\n" +
  "    -f, --force            Force to progress (DANGEROUS)\n" +
  "        --full-logfile     Include the full logfile in metadata output\n" +
  "    -h, --help             Display this help\n" +
  "    -V, --version          Display version information\n" +
  "\n" +
  "    If FILE is '-' then send the image to the standard output. If SOURCE is '-'\n" +
  "    and --restore-image is used then read the image from the standard input.\n" +
  "\n" + BUGS + HOME;

const VERSION_TEXT = "Efficiently clone, image, restore or rescue an NTFS Volume.\n\n" +
  "Copyright (c) 2003-2006 Szabolcs Szakacsits\n" +
  "Copyright (c) 2004-2006 Anton Altaparmakov\n" +
  "Copyright (c) 2010-2018 Jean-Pierre Andre\n\n" +
  "This program is free software, released under the GNU General Public License\n" +
  "and you are welcome to redistribute it under certain conditions.  It comes with\n" +
  "ABSOLUTELY NO WARRANTY; for details read the GNU General Public License to be\n" +
  'found in the file "COPYING" distributed with this program, or online at:\n' +
  "http://www.gnu.org/copyleft/gpl.html\n\n" + BUGS + HOME;

/** The parsed and validated options of a run. */
export interface NtfscloneOptions {
  /** SOURCE: a device, a file, or `-` (stdin, images only). */
  source: string;
  /** The -o/-O target; undefined only with -n. */
  output?: string;
  /** -O given. */
  overwrite: boolean;
  /** The output is stdout (`-o -`). */
  stdOut: boolean;
  /** The output exists and is a block device. */
  blkdevOut: boolean;
  /**
   * The output could not be examined (no read permission under Deno): existence is decided
   * when it is opened, never by clobbering it.
   */
  outputUnknown: boolean;
  /** -s (cleared when -m turns it into a metadata image). */
  saveImage: boolean;
  /** -r. */
  restoreImage: boolean;
  /** -m. */
  metadata: boolean;
  /** -m with -s. */
  metadataImage: boolean;
  /** -n. */
  noAction: boolean;
  /** --rescue. */
  rescue: boolean;
  /** --ignore-fs-check. */
  ignoreFsCheck: boolean;
  /** Bit 1: --new-half-serial, bit 2: --new-serial. */
  newSerial: number;
  /** -t. */
  preserveTimestamps: boolean;
  /** -q. */
  quiet: boolean;
  /** -f count. */
  force: number;
  /** --full-logfile. */
  fullLogfile: boolean;
  /** fsimage's --scrub: wipe names, contents and logs before cloning or saving. */
  scrub: boolean;
}

/** The outcome of {@linkcode parseNtfscloneArgs}: options to run, or an exit status. */
export type NtfscloneParse = { options: NtfscloneOptions } | { status: number };

const LONG: [name: string, code: string, arg: boolean][] = [
  ["quiet", "q", false],
  ["force", "f", false],
  ["help", "h", false],
  ["metadata", "m", false],
  ["no-action", "n", false],
  ["output", "o", true],
  ["overwrite", "O", true],
  ["restore-image", "r", false],
  ["ignore-fs-check", "C", false],
  ["rescue", "R", false],
  ["new-serial", "I", false],
  ["new-half-serial", "i", false],
  ["full-logfile", "l", false],
  ["save-image", "s", false],
  ["preserve-timestamps", "t", false],
  ["version", "V", false],
  ["scrub", "P", false],
];
const SHORT_NOARG = new Set("dfhmnqrstV");
const SHORT_ARG = new Set("oO");

/**
 * True when stdin is a regular file or a block device (positional reads work). Loads
 * `node:fs` (only it can stat fd 0).
 */
export function stdinIsPositional(): boolean {
  try {
    const st = nodeFs().fstatSync(0);
    return st.isFile() || st.isBlockDevice();
  } catch {
    return false;
  }
}

/** errno numbers and glibc strerror texts for the codes Node reports. */
export const ERRNO: Record<string, [number, string]> = {
  EPERM: [1, "Operation not permitted"],
  ENOENT: [2, "No such file or directory"],
  EIO: [5, "Input/output error"],
  ENXIO: [6, "No such device or address"],
  EBADF: [9, "Bad file descriptor"],
  EACCES: [13, "Permission denied"],
  EBUSY: [16, "Device or resource busy"],
  EEXIST: [17, "File exists"],
  ENOTDIR: [20, "Not a directory"],
  EISDIR: [21, "Is a directory"],
  EINVAL: [22, "Invalid argument"],
  EFBIG: [27, "File too large"],
  ENOSPC: [28, "No space left on device"],
  ESPIPE: [29, "Illegal seek"],
  EROFS: [30, "Read-only file system"],
  EPIPE: [32, "Broken pipe"],
  ENAMETOOLONG: [36, "File name too long"],
  ELOOP: [40, "Too many levels of symbolic links"],
  EOPNOTSUPP: [95, "Operation not supported"],
};

/** The errno line ntfsclone's perr_* functions print: `ERROR(n): what: strerror`. */
export function perrLine(what: string, code: string | undefined, fallback = "EIO"): string {
  const [n, s] = ERRNO[code ?? fallback] ?? ERRNO[fallback]!;
  return `ERROR(${n}): ${what}: ${s}\n`;
}

/** The Node error code (`ENOENT`, …) of an exception or its cause. */
export function errCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown })?.code;
  if (typeof c === "string" && c.startsWith("E")) return c;
  const cause = (e as { cause?: unknown })?.cause;
  if (cause && cause !== e) return errCode(cause);
  const m = e instanceof Error ? e.message : "";
  if (/Is a directory/.test(m)) return "EISDIR";
  if (/No such file/.test(m)) return "ENOENT";
  if (/Permission denied/.test(m)) return "EACCES";
  if (/No space left/.test(m)) return "ENOSPC";
  return undefined;
}

/**
 * Parses `args` as ntfsclone 2022.10.3 does and applies its checks in the same order, writing
 * the same messages to `ctx.stderr`. The banner is not printed here.
 */
export function parseNtfscloneArgs(args: string[], ctx: CommandContext): NtfscloneParse {
  const err: TextWriter = ctx.stderr;
  const prog = ctx.programName;
  const usage = (status: number): NtfscloneParse => {
    err.write(NTFSCLONE_USAGE);
    return { status };
  };
  let source: string | undefined;
  let output: string | undefined;
  const o = {
    overwrite: false,
    saveImage: false,
    restoreImage: false,
    metadata: false,
    noAction: false,
    rescue: false,
    scrub: false,
    ignoreFsCheck: false,
    newSerial: 0,
    preserveTimestamps: false,
    quiet: false,
    force: 0,
    fullLogfile: false,
  };
  // Returns a status to stop with, or undefined to go on.
  const apply = (c: string, arg?: string): number | undefined => {
    switch (c) {
      case "q":
        o.quiet = true;
        return;
      case "f":
        o.force++;
        return;
      case "d":
        return;
      case "h":
        usage(0);
        return 0;
      case "V":
        err.write(VERSION_TEXT);
        return 0;
      case "i":
        o.newSerial |= 1;
        return;
      case "I":
        o.newSerial |= 2;
        return;
      case "l":
        o.fullLogfile = true;
        return;
      case "m":
        o.metadata = true;
        return;
      case "n":
        o.noAction = true;
        return;
      case "O":
      case "o":
        if (c === "O") o.overwrite = true;
        if (output !== undefined) {
          usage(1);
          return 1;
        }
        output = arg;
        return;
      case "r":
        o.restoreImage = true;
        return;
      case "C":
        o.ignoreFsCheck = true;
        return;
      case "R":
        o.rescue = true;
        return;
      case "P":
        o.scrub = true;
        return;
      case "s":
        o.saveImage = true;
        return;
      case "t":
        o.preserveTimestamps = true;
        return;
    }
    return;
  };

  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") break;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const exact = LONG.find((l) => l[0] === name);
      const cands = exact ? [exact] : LONG.filter((l) => l[0].startsWith(name));
      if (cands.length === 0) {
        err.write(`${prog}: unrecognized option '${a}'\n`);
        return usage(1);
      }
      if (cands.length > 1) {
        err.write(
          `${prog}: option '${a.slice(0, eq < 0 ? a.length : eq)}' is ambiguous; possibilities:${
            cands.map((l) => ` '--${l[0]}'`).join("")
          }\n`,
        );
        return usage(1);
      }
      const [full, code, hasArg] = cands[0]!;
      let val: string | undefined;
      if (hasArg) {
        if (eq >= 0) val = a.slice(eq + 1);
        else if (i + 1 < args.length) val = args[++i]!;
        else {
          err.write(`${prog}: option '--${full}' requires an argument\n`);
          return usage(1);
        }
      } else if (eq >= 0) {
        err.write(`${prog}: option '--${full}' doesn't allow an argument\n`);
        return usage(1);
      }
      const st = apply(code, val);
      if (st !== undefined) return { status: st };
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let k = 1; k < a.length; k++) {
        const c = a[k]!;
        if (SHORT_ARG.has(c)) {
          let val: string;
          if (k + 1 < a.length) val = a.slice(k + 1);
          else if (i + 1 < args.length) val = args[++i]!;
          else {
            err.write(`${prog}: option requires an argument -- '${c}'\n`);
            return usage(1);
          }
          const st = apply(c, val);
          if (st !== undefined) return { status: st };
          break;
        }
        if (!SHORT_NOARG.has(c)) {
          err.write(`${prog}: invalid option -- '${c}'\n`);
          return usage(1);
        }
        const st = apply(c);
        if (st !== undefined) return { status: st };
      }
      continue;
    }
    if (source !== undefined) return usage(1);
    source = a;
  }

  const fail = (msg: string, withUsage = false): NtfscloneParse => {
    err.write(`ERROR: ${msg}`);
    return withUsage ? usage(1) : { status: 1 };
  };
  if (!o.noAction && output === undefined) return fail("You must specify an output file.\n", true);
  const stdOut = !o.noAction && output === "-";
  if (source === undefined) return fail("You must specify a device file.\n", true);
  // Extension: a volume redirected to stdin (`< /dev/sdX`, needing no permission) is read
  // positionally; a pipe or terminal is refused as ntfsclone refuses every stdin volume.
  if (!o.restoreImage && source === "-" && !stdinIsPositional()) {
    return fail("Only special images can be read from standard input\n", true);
  }
  let metadataImage = false;
  if (o.metadata && o.saveImage) {
    metadataImage = true;
    o.saveImage = false;
  }
  if (o.metadata && o.restoreImage) {
    return fail("Restoring only metadata from an image is not supported!\n");
  }
  if (o.metadata && !metadataImage && stdOut) {
    return fail("Cloning only metadata to stdout isn't supported!\n");
  }
  if (o.ignoreFsCheck && !o.metadata && !o.rescue) {
    return fail(
      "Filesystem check can be ignored only for metadata cloning or rescue situations!\n",
    );
  }
  if (o.saveImage && o.restoreImage) {
    return fail("Saving and restoring an image at the same time is not supported!\n");
  }
  if (o.noAction && !o.restoreImage) return fail("A restoring test requires the restore option!\n");
  if (o.noAction && output !== undefined) {
    return fail("A restoring test requires not defining any output!\n");
  }
  let blkdevOut = false;
  let outputUnknown = false;
  if (!o.noAction && !stdOut) {
    const out = output!;
    const why = explainMissing(out, "write");
    if (why) {
      err.write(`${prog}: ${why}\n`);
      return { status: 1 };
    }
    let st: Deno.FileInfo | undefined;
    try {
      st = Deno.statSync(out);
    } catch (e) {
      const code = errCode(e);
      if ((e as Error)?.name === "NotCapable") outputUnknown = true;
      else if (code !== "ENOENT") {
        err.write(perrLine(`Couldn't access '${out}'`, code));
        return { status: 1 };
      }
    }
    if (st) {
      if (!o.overwrite) {
        return fail(
          `Output file '${out}' already exists.\nUse option --overwrite if you want to replace its content.\n`,
        );
      }
      if (st.isBlockDevice) {
        blkdevOut = true;
        if (o.metadata && !o.force) {
          return fail(
            "Cloning only metadata to a block device does not usually make sense, aborting...\n" +
              "If you were instructed to do this by a developer and/or are sure that this is what you want to do, run this utility again but this time add the force option, i.e. add '--force' to the command line arguments.",
          );
        }
      }
    }
  }
  return {
    options: {
      source,
      ...(output !== undefined ? { output } : {}),
      stdOut,
      blkdevOut,
      outputUnknown,
      metadataImage,
      ...o,
    },
  };
}
