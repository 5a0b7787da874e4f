/**
 * What every command receives: its program name (for message prefixes), text writers for
 * stdout and stderr, and whether debug output (stack traces) is on. Commands never touch
 * `console` or `Deno.exit`; they return an exit status.
 *
 * @module
 */
import { nodeFs } from "../_internal/node_builtin.ts";

/** A text writer. */
export interface TextWriter {
  /** Writes `text` (no newline added). */
  write(text: string): void;
}

/** The context a command runs in. */
export interface CommandContext {
  /** The name used as the prefix of messages: argv[0] as the original tools do ("e2image"). */
  programName: string;
  /** Standard output (text). Binary image data goes through sinks, not through this. */
  stdout: TextWriter;
  /** Standard error. */
  stderr: TextWriter;
  /** Print stack traces for unexpected errors. */
  debug: boolean;
}

/** A subcommand: parses `args` and returns the exit status. */
export type Command = (args: string[], ctx: CommandContext) => number | Promise<number>;

const enc = new TextEncoder();

/**
 * A writer to a file descriptor that loops over short writes. A closed pipe (EPIPE) is
 * swallowed for stderr and rethrown for stdout, so the command can stop. Descriptors 1 and 2
 * are written through `Deno.stdout`/`Deno.stderr` (no `node:fs` to load); any other through
 * `node:fs`.
 */
export function fdWriter(fd: number): TextWriter {
  const put = fd === 1
    ? (b: Uint8Array) => Deno.stdout.writeSync(b)
    : fd === 2
    ? (b: Uint8Array) => Deno.stderr.writeSync(b)
    : (b: Uint8Array) => nodeFs().writeSync(fd, b, 0, b.length);
  return {
    write(text: string): void {
      const b = enc.encode(text);
      let off = 0;
      while (off < b.length) {
        try {
          off += put(b.subarray(off));
        } catch (e) {
          const x = e as { code?: string; name?: string };
          if (x.code === "EAGAIN" || x.name === "WouldBlock") continue;
          if (fd === 2) return;
          throw e;
        }
      }
    },
  };
}

/** A writer that collects text, for tests. */
export class BufferWriter implements TextWriter {
  /** Everything written so far. */
  text = "";
  /** Appends `text`. */
  write(text: string): void {
    this.text += text;
  }
}

/** The default context: the real stdout and stderr. */
export function defaultContext(programName: string, debug = false): CommandContext {
  return { programName, stdout: fdWriter(1), stderr: fdWriter(2), debug };
}
