import assert from "node:assert/strict";
import { MAIN, mustRun, needs, run, tempDir } from "../_helpers.ts";

Deno.test(
  "e2image -r on a block device shorter than its filesystem: e2image's 'Invalid argument' message and status",
  needs("root", "losetup", "mkfs.ext4", "e2image"),
  () => {
    using d = tempDir();
    const img = `${d.path}/t.img`;
    mustRun("mkfs.ext4", ["-q", "-F", "-b", "1024", img, "8M"]);
    Deno.truncateSync(img, 600 * 1024);
    const loop = mustRun("losetup", ["-f", "--show", img]).out.trim();
    let real, ours;
    try {
      real = run("e2image", ["-r", loop, `${d.path}/r1`]);
      ours = run(Deno.execPath(), [
        "run",
        "--no-prompt",
        "-A",
        MAIN,
        "e2image",
        "-r",
        loop,
        `${d.path}/r2`,
      ]);
    } finally {
      run("losetup", ["-d", loop]);
    }
    assert.equal(ours.code, real.code);
    // Program name aside (the real one prints its argv[0], a full path here).
    assert.equal(ours.err, real.err.replaceAll(/^\/\S*e2image:/gm, "e2image:"));
    assert.match(ours.err, /Invalid argument while iterating over inode/);
    assert.equal(ours.out, real.out);
  },
);
