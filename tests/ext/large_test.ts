/**
 * A sparse 4 TiB ext4 (lazy inode tables, so the image file holds only tens of MiB): the
 * selection must complete with memory that follows metadata, not device size.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ExtVolume } from "../../lib/ext/mod.ts";
import { openSource } from "../../lib/io/mod.ts";
import { needs, run, tempDir } from "../_helpers.ts";

Deno.test({
  name: "e2imageSelection() of a sparse 4 TiB ext4 stays well under 200 MiB of RSS",
  ...needs("mkfs.ext4"),
  fn() {
    using tmp = tempDir("fsimage-ext-large-");
    const img = `${tmp.path}/big.img`;
    if (run("truncate", ["-s", "4T", img]).code !== 0) {
      console.error("skipping: the temp file system refuses a 4 TiB sparse file");
      return;
    }
    const mk = run("mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", img]);
    if (mk.code !== 0) {
      console.error(`skipping: mkfs.ext4 on a 4 TiB sparse file failed: ${mk.err}`);
      return;
    }
    const src = openSource(img);
    try {
      const vol = ExtVolume.open(src);
      assertEquals(vol.blocksCount, 2 ** 30);
      const sel = vol.e2imageSelection();
      let n = 0;
      for (const e of sel.blocks) n += e.count;
      // No block is marked twice on a fresh fs: the mark count is the block count.
      assertEquals(n, sel.markCount);
      assertEquals(sel.blocks[0]!.start, 0);
      const rss = Deno.memoryUsage().rss;
      assert(rss < 200 * 1048576, `RSS ${Math.round(rss / 1048576)} MiB`);
    } finally {
      src.close();
    }
  },
});
