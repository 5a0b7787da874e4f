import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mustRun, needs, run, runFsimage, sha256File, tempDir } from "../_helpers.ts";

const SECRET = "Zebulon-4711-Quokka";

function contains(path: string, needle: string): boolean {
  const hay = Buffer.from(Deno.readFileSync(path));
  const utf16 = Buffer.alloc(needle.length * 2);
  for (let i = 0; i < needle.length; i++) utf16[2 * i] = needle.charCodeAt(i);
  return hay.indexOf(Buffer.from(needle)) >= 0 || hay.indexOf(utf16) >= 0;
}

Deno.test(
  "ntfsclone --scrub: saved and metadata images hold no planted secret, stay valid, the source is untouched",
  needs("mkntfs", "ntfscp", "ntfsfix", "ntfsclone"),
  () => {
    using d = tempDir();
    const vol = `${d.path}/vol.img`;
    Deno.writeFileSync(vol, new Uint8Array(0));
    Deno.truncateSync(vol, 16 << 20);
    mustRun("mkntfs", ["-q", "-F", "-f", "-T", "-L", SECRET.slice(0, 16), vol]);
    const file = `${d.path}/content.txt`;
    Deno.writeTextFileSync(file, `${SECRET} `.repeat(200));
    mustRun("ntfscp", ["-q", vol, file, `${SECRET}.txt`]);
    mustRun("ntfscp", ["-q", vol, file, `notes-${SECRET}`]);
    const before = sha256File(vol);
    assert.ok(contains(vol, SECRET));

    // A scrubbed special image, restored by the real ntfsclone.
    const img = `${d.path}/scrubbed.nimg`;
    const s = runFsimage(["ntfsclone", "-q", "--save-image", "--scrub", "-o", img, vol]);
    assert.equal(s.code, 0, s.err);
    const restored = `${d.path}/restored.img`;
    mustRun("ntfsclone", ["-q", "--restore-image", "--overwrite", restored, img]);
    assert.ok(
      !contains(img, SECRET) && !contains(restored, SECRET),
      "the secret survived --save-image --scrub",
    );
    assert.equal(run("ntfsfix", ["-n", restored]).code, 0);

    // A scrubbed metadata clone.
    const meta = `${d.path}/meta.img`;
    const m = runFsimage(["ntfsclone", "-q", "--metadata", "--scrub", "-O", meta, vol]);
    assert.equal(m.code, 0, m.err);
    assert.ok(!contains(meta, SECRET), "the secret survived --metadata --scrub");
    assert.equal(run("ntfsfix", ["-n", meta]).code, 0);

    assert.equal(sha256File(vol), before, "the source was modified");
  },
);
