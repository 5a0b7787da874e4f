import assert from "node:assert/strict";
import { extractFixture, mustRun, needs, runFsimage, sha256File, tempDir } from "../_helpers.ts";

// A QCOW2 image is a source like any other: e2image -r converts any version qemu-img writes
// (the real e2image reads only version 2), and every other mode images the filesystem inside.
Deno.test(
  "e2image -r converts qemu-img's compressed v3 QCOW2 back to the exact raw disk",
  needs("qemu-img"),
  () => {
    using d = tempDir();
    const fs = extractFixture("demo/ext4.img.gz", `${d.path}/ext4.img`);
    mustRun("qemu-img", ["convert", "-c", "-O", "qcow2", fs, `${d.path}/v3c.qcow2`]);
    const r = runFsimage(["e2image", "-r", `${d.path}/v3c.qcow2`, `${d.path}/back.raw`]);
    assert.equal(r.code, 0, r.err);
    assert.equal(sha256File(`${d.path}/back.raw`), sha256File(fs));
  },
);

Deno.test(
  "e2image -Q and the normal image read the filesystem inside a QCOW2 source",
  needs("qemu-img", "e2image", "dumpe2fs"),
  () => {
    using d = tempDir();
    const fs = extractFixture("demo/ext4.img.gz", `${d.path}/ext4.img`);
    const q = `${d.path}/src.qcow2`;
    mustRun("qemu-img", ["convert", "-O", "qcow2", "-o", "cluster_size=65536", fs, q]);
    const fromQ = runFsimage(["e2image", "-Q", q, `${d.path}/out.qcow2`]);
    assert.equal(fromQ.code, 0, fromQ.err);
    mustRun("e2image", ["-r", fs, `${d.path}/ref.raw`]);
    assert.match(
      mustRun("qemu-img", ["compare", "-F", "raw", `${d.path}/out.qcow2`, `${d.path}/ref.raw`]).out,
      /identical/,
    );
    const norm = runFsimage(["e2image", q, `${d.path}/out.e2i`]);
    assert.equal(norm.code, 0, norm.err);
    mustRun("e2image", [fs, `${d.path}/ref.e2i`]);
    const a = mustRun("dumpe2fs", ["-i", `${d.path}/out.e2i`]).out,
      b = mustRun("dumpe2fs", ["-i", `${d.path}/ref.e2i`]).out;
    assert.equal(a, b);
  },
);
