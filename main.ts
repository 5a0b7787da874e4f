/**
 * The `fsimage` command line: `deno run … main.ts <command> …`.
 *
 * @module
 */
import { main } from "./lib/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
