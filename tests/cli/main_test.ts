import assert from "node:assert/strict";
import { main, VERSION } from "../../lib/cli/main.ts";
import { BufferWriter } from "../../lib/cli/context.ts";
import { MAIN, run, runFsimage, tempDir } from "../_helpers.ts";

function ctx() {
  return { stdout: new BufferWriter(), stderr: new BufferWriter(), debug: false };
}

Deno.test("fsimage --version prints the version from deno.json", async () => {
  const c = ctx();
  assert.equal(await main(["--version"], c), 0);
  assert.equal(c.stdout.text, `fsimage ${VERSION}\n`);
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});

Deno.test("fsimage --help lists every command; no arguments is a usage error (2)", async () => {
  const c = ctx();
  assert.equal(await main(["--help"], c), 0);
  for (const cmd of ["e2image", "ntfsclone", "copy"]) {
    assert.match(c.stdout.text, new RegExp(`^  ${cmd} `, "m"));
  }
  const d = ctx();
  assert.equal(await main([], d), 2);
  assert.match(d.stderr.text, /^fsimage .*\n\nUsage: fsimage <command>/);
});

Deno.test("an unknown subcommand is a usage error with exit status 2", async () => {
  const c = ctx();
  assert.equal(await main(["frobnicate"], c), 2);
  assert.equal(c.stderr.text.split("\n")[0], "fsimage: unknown command 'frobnicate'");
});

Deno.test("the real entry point exits with the router's status and needs no permission", () => {
  const r = runFsimage(["--version"], { flags: [] });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `fsimage ${VERSION}\n`);
  assert.equal(runFsimage(["nope"], { flags: [] }).code, 2);
});

Deno.test("a reader that closes the pipe ends the run silently with status 141", () => {
  using d = tempDir();
  const src = `${d.path}/big.img`;
  Deno.writeFileSync(src, new Uint8Array(8 << 20).fill(1));
  const script =
    `"${Deno.execPath()}" run --no-prompt --allow-read="${src}" "${MAIN}" copy "${src}" - ` +
    `2>"${d.path}/err" | head -c 1000 >/dev/null; echo "\${PIPESTATUS[0]}"`;
  const r = run("bash", ["-c", script]);
  assert.equal(r.out.trim(), "141");
  assert.equal(Deno.readTextFileSync(`${d.path}/err`), "");
});
