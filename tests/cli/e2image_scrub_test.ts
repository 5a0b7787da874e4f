import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mustRun, needs, run, runFsimage, sha256File, tempDir } from "../_helpers.ts";

const SECRET = "Zebulon-4711-Quokka";

function contains(path: string, needle: string): boolean {
  const hay = Deno.readFileSync(path);
  const utf8 = new TextEncoder().encode(needle);
  const utf16 = new Uint8Array(needle.length * 2);
  for (let i = 0; i < needle.length; i++) utf16[2 * i] = needle.charCodeAt(i);
  const find = (n: Uint8Array) => Buffer.from(hay).indexOf(Buffer.from(n)) >= 0;
  return find(utf8) || find(utf16);
}

Deno.test(
  "e2image --scrub: raw and QCOW2 images hold no planted secret, pass e2fsck, and the source is untouched",
  needs("mkfs.ext4", "e2fsck", "qemu-img"),
  () => {
    using d = tempDir();
    const tree = `${d.path}/tree`;
    Deno.mkdirSync(`${tree}/${SECRET}-dir`, { recursive: true });
    for (let i = 0; i < 50; i++) {
      Deno.writeTextFileSync(`${tree}/${SECRET}-dir/${SECRET}-${i}`, `x${i}`);
    }
    Deno.symlinkSync(
      `${SECRET}/target/that/is/long/enough/to/be/a/slow/symlink/${"p".repeat(60)}`,
      `${tree}/slow`,
    );
    Deno.symlinkSync(`${SECRET}`, `${tree}/fast`);
    const fs = `${d.path}/fs.img`;
    mustRun("mkfs.ext4", [
      "-q",
      "-F",
      "-L",
      SECRET.slice(0, 16),
      "-O",
      "inline_data",
      "-d",
      tree,
      fs,
      "8M",
    ]);
    const before = sha256File(fs);
    assert.ok(contains(fs, SECRET));

    const raw = `${d.path}/out.raw`;
    const r = runFsimage(["e2image", "-r", "--scrub", fs, raw]);
    assert.equal(r.code, 0, r.err);
    assert.ok(!contains(raw, SECRET), "the raw image still holds the secret");
    assert.ok(!contains(raw, SECRET.slice(0, 16)), "the raw image still holds the label");
    const f = run("e2fsck", ["-fn", raw]);
    assert.equal(f.code, 0, f.out);

    const q = `${d.path}/out.qcow2`;
    const rq = runFsimage(["e2image", "-Q", "--scrub", fs, q]);
    assert.equal(rq.code, 0, rq.err);
    assert.equal(run("qemu-img", ["check", q]).code, 0);
    mustRun("qemu-img", ["convert", "-O", "raw", q, `${d.path}/q.raw`]);
    assert.ok(!contains(`${d.path}/q.raw`, SECRET));
    assert.equal(sha256File(`${d.path}/q.raw`), sha256File(raw));

    assert.equal(sha256File(fs), before, "the source was modified");
  },
);
