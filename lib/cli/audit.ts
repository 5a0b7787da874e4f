/**
 * `fsimage audit IMAGE`: reports what an ext2/3/4 or NTFS image (a metadata image made by
 * e2image -r / ntfsclone -m, or a whole file system) still holds that could identify people
 * or data. Exit status: 0 clean, 1 something found, 2 usage error or an image that cannot be
 * read as ext or NTFS.
 *
 * @module
 */
import { FsimageError } from "../errors.ts";
import type { Source } from "../io/types.ts";
import { auditExt } from "../ext/audit.ts";
import { auditNtfs } from "../ntfs/audit.ts";
import { probeQcow2, Qcow2Reader } from "../qcow2/reader.ts";
import { PRIVACY_KIND_TEXT, type PrivacyFinding } from "../_internal/privacy.ts";
import { parseCommandLine } from "./args.ts";
import type { CommandContext } from "./context.ts";
import { CliError, dropPermissions, openInput } from "./open.ts";

const USAGE = `Usage: fsimage audit [--json] [--strict] [--free-space] [-q] IMAGE

Reports what an ext2/3/4 or NTFS image (raw or QCOW2 metadata image, or a whole file system) holds
that could identify people or data: names, deleted entries, inline data, xattrs, symlink
targets, journal contents, the label, the last-mounted path, slack bytes and file data.
  --json      print the findings as JSON
  --strict    count UUIDs and serial numbers as findings too
  --free-space  also read the unallocated blocks (deleted files; slow on big sparse images)
  -q, --quiet print nothing; the exit status says it all
Exit status: 0 clean, 1 identifying content found, 2 usage error or unreadable image.
`;

/** The file system type of an image, from its magic numbers. */
export type ImageFormat = "ext" | "ntfs";

/** Detects ext (0xEF53 at byte 1080) or NTFS ("NTFS    " at byte 3); undefined otherwise. */
export function detectFormat(source: Source): ImageFormat | undefined {
  const b = new Uint8Array(1082);
  const n = source.readAt(0, b);
  if (n >= 11 && new TextDecoder().decode(b.subarray(3, 11)) === "NTFS    ") return "ntfs";
  if (n >= 1082 && b[1080] === 0x53 && b[1081] === 0xef) return "ext";
  return undefined;
}

/**
 * Formats findings as the text report of `fsimage audit`; with `samples` false (the summary of
 * `fsimage scrub`) only counts are printed, so a log never repeats what was wiped.
 */
export function formatFindings(findings: readonly PrivacyFinding[], samples = true): string {
  const lines: string[] = [];
  for (const f of findings) {
    const tag = !samples ? "wiped" : f.severity === "leak" ? "LEAK " : "info ";
    const ex = samples && f.samples.length
      ? `: ${f.samples.map((s) => JSON.stringify(s)).join(", ")}`
      : "";
    lines.push(
      `${tag} ${f.kind.padEnd(16)} ${String(f.count).padStart(7)}  ${
        PRIVACY_KIND_TEXT[f.kind]
      }${ex}`,
    );
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** Runs `fsimage audit` (see the usage text). */
export function auditCommand(args: string[], ctx: CommandContext): number {
  const parsed = parseCommandLine(args, ctx, USAGE, {
    json: { type: "boolean" },
    strict: { type: "boolean" },
    "free-space": { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    ctx.stderr.write(USAGE);
    return 2;
  }
  const path = positionals[0]!;
  let source;
  try {
    source = openInput(path);
  } catch (e) {
    if (e instanceof CliError || e instanceof FsimageError) {
      ctx.stderr.write(`${ctx.programName}: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
  try {
    dropPermissions(ctx);
    if (!("readAt" in source)) {
      ctx.stderr.write(`${ctx.programName}: ${path}: needs a file or device, not a pipe\n`);
      return 2;
    }
    let image: Source = source;
    let report;
    let format: ImageFormat | undefined;
    try {
      // A QCOW2 image (e2image -Q) is read through its guest disk.
      if (probeQcow2(source)) image = Qcow2Reader.open(source);
      format = detectFormat(image);
      if (!format) {
        ctx.stderr.write(`${ctx.programName}: ${path}: neither an ext2/3/4 nor an NTFS image\n`);
        return 2;
      }
      const opts = { freeSpace: values["free-space"] ?? false };
      report = format === "ext" ? auditExt(image, opts) : auditNtfs(image, opts);
    } catch (e) {
      if (e instanceof FsimageError) {
        ctx.stderr.write(`${ctx.programName}: ${path}: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
    const counted = report.findings.filter((f) => f.severity === "leak" || values.strict);
    const status = counted.length ? 1 : 0;
    if (values.quiet) return status;
    if (values.json) {
      ctx.stdout.write(
        JSON.stringify({ image: path, format, clean: status === 0, findings: report.findings }) +
          "\n",
      );
      return status;
    }
    ctx.stdout.write(`${path}: ${format === "ext" ? "ext2/3/4" : "NTFS"} image\n`);
    ctx.stdout.write(formatFindings(report.findings));
    ctx.stdout.write(
      status
        ? `${counted.length} kind${counted.length === 1 ? "" : "s"} of identifying content found\n`
        : "clean: nothing identifying found" +
          (report.findings.length ? " (volume identifiers aside)\n" : "\n"),
    );
    return status;
  } finally {
    source.close();
  }
}
