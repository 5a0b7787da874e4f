/**
 * Runs `fsimage ARGS` in this process, then prints on stderr which Node built-ins the run
 * loaded through lib/_internal/node_builtin.ts (a JSON array on the last line), for
 * startup_imports_test.ts.
 *
 * @module
 */
import { main } from "../../lib/cli/main.ts";
import { loadedNodeBuiltins } from "../../lib/_internal/node_builtin.ts";

const rc = await main(Deno.args);
Deno.stderr.writeSync(
  new TextEncoder().encode(`\nnode built-ins: ${JSON.stringify(loadedNodeBuiltins())}\n`),
);
Deno.exit(rc);
