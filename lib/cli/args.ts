/**
 * Option parsing shared by fsimage's own commands (`copy`, `audit`, `scrub`): `node:util`
 * parseArgs with positionals, a usage error (exit 2) on bad options, and `-h/--help`. The
 * e2image and ntfsclone commands parse exactly as their originals do, in their own files.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { CommandContext } from "./context.ts";

/** The parsed command line of {@linkcode parseCommandLine}. */
export type ParsedCommandLine<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true }>
>;

/**
 * Parses `args` against `options` (which gains `-h/--help`). Returns the parse, or the exit
 * status when the command is already done: 0 after printing the usage for `--help`, 2 after
 * printing the error and the usage for a bad option.
 */
export function parseCommandLine<const O extends ParseArgsOptionsConfig>(
  args: string[],
  ctx: CommandContext,
  usage: string,
  options: O,
): ParsedCommandLine<O> | number {
  if (args.includes("-h") || args.includes("--help")) {
    ctx.stdout.write(usage);
    return 0;
  }
  try {
    return parseArgs({ args, options, allowPositionals: true });
  } catch (e) {
    ctx.stderr.write(`${ctx.programName}: ${(e as Error).message}\n${usage}`);
    return 2;
  }
}
