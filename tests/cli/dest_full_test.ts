import assert from "node:assert/strict";
import { extractFixture, mustRun, needs, run, runFsimage, tempDir } from "../_helpers.ts";

// A destination that fills up: a clean error, exit status 1, and no output that could pass for a
// finished image.
Deno.test(
  "destination full: e2image -ra and ntfsclone --save-image fail cleanly, leaving nothing that looks complete",
  needs("root", "mount", "mkfs.ext4"),
  () => {
    using d = tempDir();
    const tree = `${d.path}/tree`;
    Deno.mkdirSync(tree);
    const data = new Uint8Array(3 << 20);
    crypto.getRandomValues(data.subarray(0, 65536));
    for (let i = 65536; i < data.length; i++) data[i] = data[i - 65536]! ^ (i >> 16);
    Deno.writeFileSync(`${tree}/f`, data);
    const ext = `${d.path}/ext.img`;
    mustRun("mkfs.ext4", ["-q", "-F", "-d", tree, ext, "8M"]);
    const ntfs = extractFixture("demo/ntfs.img.gz", `${d.path}/ntfs.img`);
    const mnt = `${d.path}/small`;
    Deno.mkdirSync(mnt);
    mustRun("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]);
    try {
      const raw = `${mnt}/ext.raw`;
      const e = runFsimage(["e2image", "-ra", ext, raw]);
      assert.equal(e.code, 1);
      assert.match(e.err, /^e2image: No space left on device error writing block \d+$/m);
      assert.equal(Deno.statSync(raw).size, 0, "a partial raw image was left behind");

      const img = `${mnt}/ntfs.nimg`;
      const n = runFsimage(["ntfsclone", "-q", "--save-image", "-o", img, ntfs]);
      assert.equal(n.code, 1);
      // As ntfsclone: refused up front when the free space is known, else the write fails.
      assert.match(n.out + n.err, /enough free space: \d+ MB < \d+ MB|No space left on device/);
      // Whatever is left cannot be taken for a complete image: restoring it fails.
      const r = runFsimage(["ntfsclone", "--restore-image", "--no-action", img]);
      assert.notEqual(r.code, 0);
    } finally {
      run("umount", [mnt]);
    }
  },
);
