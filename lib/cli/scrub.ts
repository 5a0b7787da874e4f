/**
 * `fsimage scrub IMAGE`: removes, in place, what `fsimage audit` finds in an ext2/3/4 or NTFS
 * raw image, keeping it a valid file system (e2fsck -fn / ntfsfix -n clean, mountable), then
 * audits the result and prints a summary. Exit status: 0 scrubbed and clean, 1 an error or
 * identifying content left, 2 usage error.
 *
 * @module
 */
import { FsimageError } from "../errors.ts";
import { scrubExt } from "../ext/scrub.ts";
import { scrubNtfs } from "../ntfs/scrub.ts";
import { auditExt } from "../ext/audit.ts";
import { auditNtfs } from "../ntfs/audit.ts";
import { parseCommandLine } from "./args.ts";
import type { CommandContext } from "./context.ts";
import { CliError, dropPermissions, openOutput } from "./open.ts";
import { detectFormat, formatFindings } from "./audit.ts";
import { probeQcow2 } from "../qcow2/reader.ts";

const USAGE = `Usage: fsimage scrub [--keep-data] [--free-space] [--json] [-q] IMAGE

Scrubs an ext2/3/4 or NTFS raw image IN PLACE: scrambles every file name (same length),
wipes deleted entries, slack, inline data, xattr names and values, symlink targets (same
length), journal contents, the label and last-mounted path, and file data, redoing every
checksum so that e2fsck -fn / ntfsfix -n still pass. UUIDs and serial numbers are kept.
Work on a copy: the original names and contents are gone afterwards.
  --keep-data  leave the data blocks of regular files as they are
  --free-space also zero the unallocated blocks that are not zero (deleted files)
  --json       print the summary as JSON
  -q, --quiet  no summary
Exit status: 0 scrubbed and clean, 1 error or content left, 2 usage error.
`;

/** Runs `fsimage scrub` (see the usage text). */
export function scrubCommand(args: string[], ctx: CommandContext): number {
  const parsed = parseCommandLine(args, ctx, USAGE, {
    "keep-data": { type: "boolean" },
    "free-space": { type: "boolean" },
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] === "-") {
    ctx.stderr.write(USAGE);
    return 2;
  }
  const path = positionals[0]!;
  let image;
  try {
    image = openOutput(path, "existing", { readBack: true });
  } catch (e) {
    if (e instanceof CliError || e instanceof FsimageError) {
      ctx.stderr.write(`${ctx.programName}: ${(e as Error).message}\n`);
      return e instanceof CliError ? e.status : 1;
    }
    throw e;
  }
  try {
    dropPermissions(ctx);
    if (image.kind === "stream") {
      ctx.stderr.write(`${ctx.programName}: ${path}: needs a file or device, not a pipe\n`);
      return 2;
    }
    if (probeQcow2(image)) {
      ctx.stderr.write(
        `${ctx.programName}: ${path}: scrub works on raw images; convert it first (e2image -r ${path} out.raw)\n`,
      );
      return 1;
    }
    const format = detectFormat(image);
    if (!format) {
      ctx.stderr.write(`${ctx.programName}: ${path}: neither an ext2/3/4 nor an NTFS image\n`);
      return 1;
    }
    const freeSpace = values["free-space"] ?? false;
    const opts = { wipeData: !values["keep-data"], freeSpace };
    let result, after;
    try {
      result = format === "ext" ? scrubExt(image, opts) : scrubNtfs(image, opts);
      image.sync?.();
      after = format === "ext" ? auditExt(image, { freeSpace }) : auditNtfs(image, { freeSpace });
    } catch (e) {
      if (e instanceof FsimageError) {
        ctx.stderr.write(`${ctx.programName}: ${path}: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    const left = after.findings.filter((f) => f.severity === "leak");
    const status = left.length ? 1 : 0;
    if (values.quiet) return status;
    if (values.json) {
      // Counts only: the JSON summary does not repeat what was wiped either.
      const counts = result.changed.map(({ kind, severity, count }) => ({ kind, severity, count }));
      ctx.stdout.write(
        JSON.stringify({ image: path, ...result, changed: counts, clean: after.clean, left }) +
          "\n",
      );
      return status;
    }
    const changed = result.changed.filter((f) => f.severity === "leak");
    ctx.stdout.write(
      `${path}: ${format === "ext" ? "ext2/3/4" : "NTFS"} image scrubbed in place\n`,
    );
    ctx.stdout.write(formatFindings(changed, false));
    if ("htreeConverted" in result && result.htreeConverted) {
      ctx.stdout.write(`${result.htreeConverted} htree directories made linear\n`);
    }
    const collisions = "nameCollisions" in result ? result.nameCollisions : result.orderViolations;
    if ("unreadableRecords" in result && result.unreadableRecords) {
      ctx.stdout.write(
        `warning: ${result.unreadableRecords} MFT records could not be parsed and were left as they are\n`,
      );
    }
    if (collisions) {
      ctx.stdout.write(`warning: ${collisions} names could not be made unique/ordered\n`);
    }
    ctx.stdout.write(
      status
        ? `still found after scrubbing:\n${formatFindings(left)}`
        : "clean: nothing identifying left (UUIDs and serial numbers kept)\n",
    );
    return status;
  } finally {
    image.close();
  }
}
