import assert from "node:assert/strict";
import { mustRun, needs, run, runFsimage, tempDir } from "../_helpers.ts";

Deno.test(
  "a full destination: a clean one-line error, exit 1, and the new output emptied",
  needs("root", "mount"),
  () => {
    using d = tempDir();
    const src = `${d.path}/src.img`;
    const data = new Uint8Array(3 << 20);
    for (let i = 0; i < data.length; i += 512) data[i] = 7;
    Deno.writeFileSync(src, data);
    const mnt = `${d.path}/small`;
    Deno.mkdirSync(mnt);
    mustRun("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]);
    try {
      const out = `${mnt}/out.img`;
      const r = runFsimage(["copy", src, out], {
        flags: [`--allow-read=${src}`, `--allow-write=${out}`],
      });
      assert.equal(r.code, 1);
      const lines = r.err.trim().split("\n");
      assert.match(
        lines[0]!,
        /^copy: Cannot write .*out\.img: No space left on device at byte 0x[0-9a-f]+$/,
      );
      assert.equal(lines[1], `copy: removed the partial output: ${out} is now empty`);
      assert.equal(Deno.statSync(out).size, 0);
    } finally {
      run("umount", [mnt]);
    }
  },
);

Deno.test("an existing output is never clobbered without -f", () => {
  using d = tempDir();
  const src = `${d.path}/src.img`, out = `${d.path}/out.img`;
  Deno.writeFileSync(src, new Uint8Array(8192).fill(1));
  Deno.writeFileSync(out, new Uint8Array([9, 9, 9]));
  const r = runFsimage(["copy", src, out]);
  assert.equal(r.code, 1);
  assert.match(r.err, /out\.img exists: use -f to write into it/);
  assert.deepEqual(Deno.readFileSync(out), new Uint8Array([9, 9, 9]));
});
