import assert from "node:assert/strict";
import { ROOT, run, tempDir } from "../_helpers.ts";

const COMPILE = `${ROOT}/scripts/compile.ts`;
const FLAGS = [
  "run",
  "--no-prompt",
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-env",
  COMPILE,
];

Deno.test("compile --bundle writes the offline single-file fallback, which runs", () => {
  using d = tempDir();
  const r = run(Deno.execPath(), [...FLAGS, "--bundle", "--out", d.path]);
  assert.equal(r.code, 0, r.err);
  const v = run(Deno.execPath(), ["run", "--no-prompt", `${d.path}/fsimage.js`, "--version"]);
  assert.equal(v.code, 0, v.err);
  assert.match(v.out, /^fsimage \d+\.\d+\.\d+\n$/);
});

Deno.test("compile builds the executables, or says clearly that the runtime download failed", () => {
  using d = tempDir();
  const r = run(Deno.execPath(), [
    ...FLAGS,
    "--target",
    "x86_64-unknown-linux-gnu",
    "--out",
    d.path,
  ]);
  if (r.code === 0) {
    // Online: the three executables exist, and the e2image one behaves as e2image.
    for (const n of ["fsimage", "e2image", "ntfsclone"]) {
      Deno.statSync(`${d.path}/x86_64-unknown-linux-gnu/${n}`);
    }
    const e = run(`${d.path}/x86_64-unknown-linux-gnu/e2image`, []);
    assert.match(e.err, /^e2image 1\.47\.0 \(5-Feb-2023\)\nUsage: /);
  } else {
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /compile: deno compile could not download its runtime \(denort\) for x86_64-unknown-linux-gnu: .*deno task compile --bundle/,
    );
    assert.equal(r.err.trim().split("\n").length, 1, r.err);
  }
});
