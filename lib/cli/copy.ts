/**
 * `fsimage copy`: a sparse, permission-scoped copy of an image file or device — fsimage's own
 * `dd conv=sparse`. All-zero blocks become holes in a new file; a pipe gets every byte; a device
 * gets only the non-hole data. It also moves a filesystem inside one file (`-o`/`-O` on the same
 * path), copying in the direction that never overwrites unread data.
 *
 * @module
 */
import {
  copyExtents,
  copyStream,
  FdSink,
  FdSource,
  type Sink,
  type Source,
  WindowSink,
  WindowSource,
} from "../io/mod.ts";
import { parseCommandLine } from "./args.ts";
import type { CommandContext } from "./context.ts";
import {
  CliError,
  discardPartialOutput,
  dropPermissions,
  openInput,
  openOutput,
  pathExists,
  sameFile,
} from "./open.ts";
import { ProgressReporter } from "./progress.ts";

const USAGE =
  `Usage: fsimage copy [-cfnpq] [-o src_offset] [-O dest_offset] [-l length] [-B blocksize] source dest

Copies source (an image file, a device, or - for stdin) to dest (a file, a device, or - for
stdout), sparsely: all-zero blocks become holes in a new file.
  -f, --force          write into an existing file or device (bytes outside the copy are kept)
  -c, --check          read dest first and write only the blocks that differ
  -n, --no-action      write nothing; print the byte ranges that would be written
  -p, --progress       report progress on stderr
  -q, --quiet          no summary
  -o, --source-offset  byte offset of the data in source
  -O, --dest-offset    byte offset to write at in dest
  -l, --length         bytes to copy (default: the rest of source)
  -B, --block-size     hole and comparison granularity (default 4096)
The same path as source and dest with -o/-O moves the data in place.
`;

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(0x[0-9a-f]+|\d+)([kmgt]?)$/i.exec(v.trim());
  if (!m) throw new CliError(`invalid ${name}: ${v}`, 2);
  const n = Number(m[1]) * 1024 ** " kmgt".indexOf((m[2] || " ").toLowerCase());
  if (!Number.isSafeInteger(n)) throw new CliError(`invalid ${name}: ${v}`, 2);
  return n;
}

/** Runs `fsimage copy` (see the usage text). */
export function copyCommand(args: string[], ctx: CommandContext): number {
  const parsed = parseCommandLine(args, ctx, USAGE, {
    force: { type: "boolean", short: "f" },
    check: { type: "boolean", short: "c" },
    "no-action": { type: "boolean", short: "n" },
    progress: { type: "boolean", short: "p" },
    quiet: { type: "boolean", short: "q" },
    "source-offset": { type: "string", short: "o" },
    "dest-offset": { type: "string", short: "O" },
    length: { type: "string", short: "l" },
    "block-size": { type: "string", short: "B" },
  });
  if (typeof parsed === "number") return parsed;
  const o = parsed.values;
  if (parsed.positionals.length !== 2) {
    ctx.stderr.write(USAGE);
    return 2;
  }
  const [srcPath, dstPath] = parsed.positionals as [string, string];
  const srcOff = num(o["source-offset"], "source offset") ?? 0;
  const dstOff = num(o["dest-offset"], "destination offset") ?? 0;
  const length = num(o.length, "length");
  const bs = num(o["block-size"], "block size") ?? 4096;
  if (bs <= 0 || (bs & (bs - 1)) !== 0) {
    throw new CliError(`block size must be a power of two: ${bs}`, 2);
  }
  const dry = o["no-action"] ?? false;

  const move = srcPath === dstPath && srcPath !== "-";
  if (move && srcOff === dstOff) throw new CliError("source and destination are the same range", 2);
  const existed = dstPath !== "-" && pathExists(dstPath);
  if (existed && !o.force && !move && !dry) {
    throw new CliError(`${dstPath} exists: use -f to write into it`);
  }

  // Open everything first, then hold no permission for the rest of the run.
  const input = openInput(srcPath);
  let sink: Sink;
  try {
    sink = dry && dstPath !== "-" && !existed
      ? { name: dstPath, kind: "file", size: 0, writeAt() {}, truncate() {}, close() {} }
      : openOutput(dstPath, move || existed ? "existing" : "create-new", {
        readBack: move || o.check,
      });
  } catch (e) {
    input.close();
    throw e;
  }
  dropPermissions(ctx);
  try {
    if (
      move && input instanceof FdSource && sink instanceof FdSink &&
      !sameFile(input.info, sink.info)
    ) {
      throw new CliError(`${srcPath} changed while opening`);
    }
    const out: Sink = dstOff ? new WindowSink(sink, dstOff) : sink;
    const progress = o.progress
      ? new ProgressReporter("Copying", { out: ctx.stderr, terminal: false })
      : undefined;
    if (!(input instanceof FdSource)) {
      if (srcOff) throw new CliError("-o needs a seekable source, not a pipe");
      if (o.check) throw new CliError("-c needs a seekable source, not a pipe");
      const n = copyStream(input, out, {
        blockSize: bs,
        limit: length,
        onProgress: (d) => progress?.update(d, d),
      });
      progress?.finish(n, n);
      if (!o.quiet) ctx.stderr.write(`${ctx.programName}: copied ${n} bytes\n`);
      return 0;
    }
    const src: Source = srcOff || length !== undefined
      ? new WindowSource(input, srcOff, length)
      : input;
    if (srcOff > input.size) {
      throw new CliError(`source offset ${srcOff} is past the end of ${srcPath}`);
    }
    const size = src.size;
    const extents = size > 0 ? [{ offset: 0, length: size }] : [];
    const res = copyExtents(src, out, extents, {
      size,
      blockSize: bs,
      checkBeforeWrite: o.check,
      dryRun: dry,
      skipZeroBlocks: out.kind === "file" && !existed,
      setLength: existed ? "extend" : "exact",
      direction: move && dstOff > srcOff ? "backward" : "forward",
      onWrite: dry
        ? (off, len) => ctx.stdout.write(`would write ${len} bytes at ${off}\n`)
        : undefined,
      onProgress: progress ? (d, t) => progress.update(d, t) : undefined,
    });
    progress?.finish(size, size);
    if (!dry) out.sync?.();
    if (!o.quiet) {
      ctx.stderr.write(
        `${ctx.programName}: ${
          dry ? "would copy" : "copied"
        } ${size} bytes, wrote ${res.bytesWritten}` +
          (o.check ? `, ${res.blocksIdentical} blocks already identical` : "") +
          `, ${res.blocksZero} zero blocks left as holes\n`,
      );
    }
    return 0;
  } catch (e) {
    if (!dry && discardPartialOutput(sink)) {
      ctx.stderr.write(`${ctx.programName}: ${(e as Error).message}\n`);
      throw new CliError(`removed the partial output: ${dstPath} is now empty`);
    }
    throw e;
  } finally {
    input.close();
    sink.close();
  }
}
