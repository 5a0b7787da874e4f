/**
 * Opening a command's inputs and outputs with the permission checks of
 * {@linkcode explainMissing}: `-` is stdin/stdout (no permission needed), a path is checked
 * without prompting and a missing permission becomes a one-line {@linkcode CliError}.
 *
 * @module
 */
import {
  type FdSink,
  type FdSource,
  type FileInfo,
  openSink,
  type OpenSinkMode,
  openSource,
  stdinSource,
  type StdinStream,
  stdoutSink,
} from "../io/mod.ts";
import type { CommandContext } from "./context.ts";
import { dropAllPermissions, explainMissing, permissionStates } from "./permissions.ts";

/** An error that ends a command with a message and an exit status. */
export class CliError extends Error {
  /** The exit status. */
  readonly status: number;
  /** Creates the error; `status` defaults to 1. */
  constructor(message: string, status = 1) {
    super(message);
    this.name = "CliError";
    this.status = status;
  }
}

/** Opens `path` (or `-` for stdin) as an input after checking read permission. */
export function openInput(path: string): FdSource | StdinStream {
  if (path === "-") return stdinSource();
  const why = explainMissing(path, "read");
  if (why) throw new CliError(why);
  return openSource(path);
}

/** Opens `path` (or `-` for stdout) as an output after checking write permission. */
export function openOutput(
  path: string,
  mode: OpenSinkMode,
  options: { perm?: number; readBack?: boolean } = {},
): FdSink {
  if (path === "-") return stdoutSink();
  const why = explainMissing(path, "write") ??
    (options.readBack ? explainMissing(path, "read") : undefined);
  if (why) throw new CliError(why);
  try {
    return openSink(path, { mode, ...options });
  } catch (e) {
    const code = ((e as Error).cause as { code?: string } | undefined)?.code;
    if (mode === "create-new" && code === "EEXIST") {
      throw new CliError(`${path} exists: refusing to overwrite it (use -f to write into it)`);
    }
    throw e;
  }
}

/** True when `path` exists (needs read permission on it; false when not allowed). */
export function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when two open files (their {@linkcode FileInfo}, taken at open time) are the same file
 * or device.
 */
export function sameFile(a: FileInfo, b: FileInfo): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.rdev === b.rdev;
}

/**
 * Drops every permission once a command's files are open; under `--debug` it prints the
 * resulting states, which the tests use to prove that a `-A` run holds nothing afterwards.
 */
export function dropPermissions(ctx: CommandContext): void {
  dropAllPermissions();
  if (ctx.debug) {
    const s = Object.entries(permissionStates()).map(([k, v]) => `${k}=${v}`).join(" ");
    ctx.stderr.write(`${ctx.programName}: permissions after opening: ${s}\n`);
  }
}

/**
 * After a failed run, makes sure a partial output cannot pass for a finished image: an output
 * file this run created is cut to zero bytes through its open descriptor (no permission is
 * needed for that once permissions are dropped). Existing files and devices are left as they
 * are (their previous contents were partly overwritten, which the error message says).
 */
export function discardPartialOutput(
  sink: { kind: string; created?: boolean; truncate?(n: number): void },
): boolean {
  if (sink.kind !== "file" || !sink.created || !sink.truncate) return false;
  try {
    sink.truncate(0);
    return true;
  } catch {
    return false;
  }
}
