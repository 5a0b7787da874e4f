import assert from "node:assert/strict";
import { BufferWriter } from "../../lib/cli/context.ts";
import { runE2image } from "../../lib/cli/e2image.ts";
import { ExtVolume } from "../../lib/ext/mod.ts";
import { FaultySource, MemorySource } from "../../lib/io/mod.ts";
import { extractFixture, tempDir } from "../_helpers.ts";

// A disk that fails in the middle: e2image reports each unreadable block, goes on with zeros in
// its place, and exits 0, as the real e2image does with a failing device (unix_io hands back an
// EIO per block). The output is the clean image with exactly those blocks zeroed.
Deno.test("e2image -r over a source with unreadable blocks: one line per block, zeros, status 0", () => {
  using d = tempDir();
  const fs = extractFixture("demo/ext4.img.gz", `${d.path}/ext4.img`);
  const vol = ExtVolume.open(new MemorySource(Deno.readFileSync(fs)));
  const bs = vol.blockSize;
  // The journal's data blocks (the last long run) are copied but never read while selecting:
  // fail two of them.
  const sel = vol.e2imageSelection();
  const run = sel.blocks.findLast((e) => e.count >= 8)!;
  const bad = run.start + Math.floor(run.count / 2);
  const ctx = () => ({
    programName: "e2image",
    stdout: new BufferWriter(),
    stderr: new BufferWriter(),
    debug: false,
  });

  const clean = ctx();
  assert.equal(
    runE2image(["-r", fs, `${d.path}/clean.raw`], clean, { dropPermissions: false }),
    0,
    clean.stderr.text,
  );
  const c = ctx();
  const rc = runE2image(["-r", fs, `${d.path}/faulty.raw`], c, {
    dropPermissions: false,
    wrapSource: (s) => new FaultySource(s, [{ offset: bad * bs + 10, length: bs + 1 }]),
  });
  assert.equal(rc, 0, c.stderr.text);
  assert.equal(
    c.stderr.text,
    "e2image 1.47.0 (5-Feb-2023)\n" +
      `e2image: Input/output error error reading block ${bad}\n` +
      `e2image: Input/output error error reading block ${bad + 1}\n`,
  );
  const want = Deno.readFileSync(`${d.path}/clean.raw`);
  want.fill(0, bad * bs, (bad + 2) * bs);
  assert.deepEqual(Deno.readFileSync(`${d.path}/faulty.raw`), want);
});
