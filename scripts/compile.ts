/**
 * `deno task compile`: builds the standalone executables `fsimage`, `e2image` and `ntfsclone`
 * for Linux x86_64 and aarch64 with `deno compile -A` (devices under /dev need every permission
 * in Deno; the program drops them all once its files are open). The three executables are the
 * same program: it looks at its own name and behaves as that command, so a rescue stick can carry
 * `e2image` and `ntfsclone` under their original names.
 *
 * `deno compile` downloads its runtime (`denort`) for each target. Where that download cannot be
 * made, this script says so clearly and points to the offline fallback, `--bundle`: a single
 * JavaScript file runnable with `deno run` (dist/fsimage.js).
 *
 * Usage: deno task compile [--target T ...] [--bundle] [--out DIR]
 *
 * @module
 */
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const NAMES = ["fsimage", "e2image", "ntfsclone"];
const DEFAULT_TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    target: { type: "string", multiple: true },
    bundle: { type: "boolean" },
    out: { type: "string" },
  },
});
const out = values.out ?? `${ROOT}/dist`;
Deno.mkdirSync(out, { recursive: true });

function deno(args: string[]): { code: number; err: string } {
  const o = new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "piped" })
    .outputSync();
  const err = new TextDecoder().decode(o.stderr);
  return { code: o.code, err };
}

if (values.bundle) {
  const file = `${out}/fsimage.js`;
  const r = deno(["bundle", "--platform", "deno", "-o", file, `${ROOT}/main.ts`]);
  if (r.code !== 0) {
    console.error(r.err);
    console.error("compile: deno bundle failed");
    Deno.exit(1);
  }
  console.log(`compile: wrote ${file}; run it with: deno run -A ${file} <command> …`);
  Deno.exit(0);
}

let failed = 0;
for (const target of values.target ?? DEFAULT_TARGETS) {
  for (const name of NAMES) {
    const file = `${out}/${target}/${name}`;
    Deno.mkdirSync(`${out}/${target}`, { recursive: true });
    const r = deno(["compile", "-A", "--target", target, "--output", file, `${ROOT}/main.ts`]);
    if (r.code === 0) {
      console.log(`compile: wrote ${file}`);
      continue;
    }
    failed++;
    if (/dl\.deno\.land|denort|error sending request|dns error|Connect/i.test(r.err)) {
      console.error(
        `compile: deno compile could not download its runtime (denort) for ${target}: this machine ` +
          `cannot reach dl.deno.land. Run this task where that download works, or pre-seed ` +
          `$DENO_DIR/dl/release/v${Deno.version.deno}/denort-${target}.zip, or build the offline ` +
          `single-file fallback with: deno task compile --bundle`,
      );
      Deno.exit(1);
    }
    console.error(r.err.trim());
    console.error(`compile: deno compile failed for ${name} (${target})`);
  }
}
Deno.exit(failed ? 1 : 0);
