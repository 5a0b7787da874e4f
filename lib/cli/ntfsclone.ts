import type { CommandContext } from "./context.ts";

/** `fsimage ntfsclone`: filled in by the ntfsclone issue. */
export function ntfscloneCommand(_args: string[], ctx: CommandContext): number {
  ctx.stderr.write(`${ctx.programName}: not implemented yet\n`);
  return 1;
}
