/**
 * The `fsimage` router: `fsimage e2image …`, `fsimage ntfsclone …`, `--help`, `--version`.
 * Usage errors of fsimage itself exit 2; each subcommand mirrors its original's statuses.
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { type Command, type CommandContext, defaultContext } from "./context.ts";
import { CliError } from "./open.ts";

/** fsimage's version, from deno.json. */
export const VERSION: string = denoJson.version;

/**
 * A command whose module is imported on first use, so that a run loads only the code of the
 * subcommand it runs (startup time grows with the module graph).
 */
function lazy(load: () => Promise<Command>): Command {
  return async (args, ctx) => (await load())(args, ctx);
}

/** The subcommands: name → [command, one-line summary]. */
export const COMMANDS: Record<string, [Command, string]> = {
  e2image: [
    lazy(async () => (await import("./e2image.ts")).e2imageCommand),
    "save ext2/3/4 metadata: normal, raw (-r) or QCOW2 (-Q) images",
  ],
  ntfsclone: [
    lazy(async () => (await import("./ntfsclone.ts")).ntfscloneCommand),
    "clone, save or restore an NTFS volume",
  ],
  copy: [
    lazy(async () => (await import("./copy.ts")).copyCommand),
    "copy an image file or device sparsely (holes for zero blocks)",
  ],
  audit: [
    lazy(async () => (await import("./audit.ts")).auditCommand),
    "report names, contents and other identifying data an image still holds",
  ],
  scrub: [
    lazy(async () => (await import("./scrub.ts")).scrubCommand),
    "remove identifying data from an ext or NTFS image in place",
  ],
};

/** The text of `fsimage --help`. */
export function usage(): string {
  const lines = [
    `fsimage ${VERSION}: save, clone and restore ext2/3/4 and NTFS filesystems`,
    "",
    "Usage: fsimage <command> [options] [arguments]",
    "       fsimage --help | --version",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([n, [, d]]) => `  ${n.padEnd(10)} ${d}`),
    "",
    "Run 'fsimage <command> --help' for a command's options.",
    "Image files need --allow-read=SRC --allow-write=DST; devices need -A (all permissions are",
    "dropped once the files are open) or a redirection: fsimage e2image -r - out.raw < /dev/sdX",
    "",
  ];
  return lines.join("\n");
}

/**
 * Runs fsimage with `args` (without the program name) and returns the exit status.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["--version"]));
 * ```
 */
export async function main(args: string[], ctx?: Partial<CommandContext>): Promise<number> {
  // A standalone executable named e2image or ntfsclone behaves as that command (busybox style).
  const self = invokedAs();
  if (self && !ctx?.programName) {
    const debug = args.includes("--debug");
    return await runCommand(
      COMMANDS[self]![0],
      debug ? args.filter((a) => a !== "--debug") : args,
      {
        ...defaultContext(self, debug),
        ...ctx,
      },
    );
  }
  const debug = args.includes("--debug");
  if (debug) args = args.filter((a) => a !== "--debug");
  const c = { ...defaultContext("fsimage", debug), ...ctx };
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? c.stderr : c.stdout).write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    c.stdout.write(`fsimage ${VERSION}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    c.stderr.write(
      `fsimage: unknown command '${name}'\nRun 'fsimage --help' for the list of commands.\n`,
    );
    return 2;
  }
  return await runCommand(entry[0], rest, { ...c, programName: ctx?.programName ?? name });
}

/** The command a compiled executable is named after ("e2image", "ntfsclone"), if any. */
export function invokedAs(): string | undefined {
  if (!Deno.build.standalone) return undefined;
  const base = Deno.execPath().split("/").pop()!.replace(/\.exe$/, "");
  return base !== "fsimage" && base in COMMANDS ? base : undefined;
}

/**
 * Runs a command, turning any escaped exception into one line on stderr (a stack trace only
 * with `--debug`) and exit status 1.
 */
export async function runCommand(
  cmd: Command,
  args: string[],
  ctx: CommandContext,
): Promise<number> {
  try {
    return await cmd(args, ctx);
  } catch (e) {
    if (isBrokenPipe(e)) return 141; // the reader went away (`| head`): 128 + SIGPIPE, silently
    const msg = e instanceof Error ? e.message : String(e);
    ctx.stderr.write(`${ctx.programName}: ${msg}\n`);
    if (ctx.debug && e instanceof Error && e.stack) ctx.stderr.write(e.stack + "\n");
    return e instanceof CliError ? e.status : 1;
  }
}

/** True when `e` (or its cause) is a write to a closed pipe. */
export function isBrokenPipe(e: unknown): boolean {
  for (let x = e, i = 0; x && i < 4; x = (x as { cause?: unknown }).cause, i++) {
    const code = (x as { code?: string }).code;
    const name = (x as { name?: string }).name;
    if (code === "EPIPE" || name === "BrokenPipe") return true;
  }
  return false;
}
