/**
 * Output to a block device: e2image copies every inode table in full (even INODE_UNINIT
 * groups and itable_unused tails) and never skips zero blocks. Compared on a loop device
 * over a 0xFF-filled scratch file.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ExtVolume } from "../../lib/ext/mod.ts";
import { copyExtents, openSink, openSource } from "../../lib/io/mod.ts";
import { blocksToBytes } from "../../lib/_internal/extents.ts";
import { needs, run, tempDir } from "../_helpers.ts";
import { extFixture } from "./_fixtures.ts";

for (const name of ["ext4-uninit", "ext4-default"]) {
  Deno.test({
    name: `e2imageSelection({ outputIsDevice }) equals e2image -r onto a loop device: ${name}`,
    ...needs("root", "losetup", "e2image", "mkfs.ext4"),
    fn() {
      using tmp = tempDir("fsimage-ext-dev-");
      const img = extFixture(name);
      const size = Deno.statSync(img).size;
      const back = `${tmp.path}/dev.img`;
      Deno.writeFileSync(back, new Uint8Array(size).fill(0xff));
      const lo = run("losetup", ["--find", "--show", back]);
      if (lo.code !== 0) {
        console.error(`skipping: losetup failed: ${lo.err}`);
        return;
      }
      const dev = lo.out.trim();
      try {
        const r = run("e2image", ["-r", img, dev]);
        assertEquals(r.code, 0, r.err);
      } finally {
        run("losetup", ["-d", dev]);
      }
      const want = Deno.readFileSync(back);
      // Ours: the device selection written over 0xFF, zero blocks included.
      const mine = `${tmp.path}/mine.img`;
      Deno.writeFileSync(mine, new Uint8Array(size).fill(0xff));
      const src = openSource(img);
      let lastSelected = false;
      let devBlocks = 0, fileBlocks = 0;
      try {
        const v = ExtVolume.open(src);
        const sel = v.e2imageSelection({ outputIsDevice: true });
        for (const e of sel.blocks) devBlocks += e.count;
        for (const e of v.e2imageSelection().blocks) fileBlocks += e.count;
        const last = sel.blocks[sel.blocks.length - 1]!;
        lastSelected = last.start + last.count === v.blocksCount;
        const sink = openSink(mine, { mode: "existing" });
        copyExtents(src, sink, blocksToBytes(sel.blocks, v.blockSize), {
          blockSize: v.blockSize,
          size,
          skipZeroBlocks: false,
          setLength: "none",
        });
        sink.close();
      } finally {
        src.close();
      }
      const got = Deno.readFileSync(mine);
      // e2image's failed ftruncate on a device writes one zero byte at the end instead.
      if (!lastSelected) got[size - 1] = 0;
      assert(devBlocks > fileBlocks, "the device selection adds inode table blocks");
      assert(want.every((b, i) => b === got[i]), `${name}: device bytes differ`);
    },
  });
}
