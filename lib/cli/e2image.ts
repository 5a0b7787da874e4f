import type { CommandContext } from "./context.ts";

/** `fsimage e2image`: filled in by the e2image issue. */
export function e2imageCommand(_args: string[], ctx: CommandContext): number {
  ctx.stderr.write(`${ctx.programName}: not implemented yet\n`);
  return 1;
}
