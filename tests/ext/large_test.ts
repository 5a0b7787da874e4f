/**
 * A sparse 4 TiB ext4 (lazy inode tables, so the image file holds only tens of MiB): the
 * selection must complete with memory that follows metadata, not device size. The selection
 * runs in a child process so its RSS is measured alone.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { needs, ROOT, run, tempDir } from "../_helpers.ts";

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
    const r = run(Deno.execPath(), [
      "run",
      "--no-prompt",
      `--allow-read=${tmp.path}`,
      `${ROOT}/tests/ext/_large_select.ts`,
      img,
    ]);
    assertEquals(r.code, 0, r.err);
    const res = JSON.parse(r.out);
    assertEquals(res.blocksCount, 2 ** 30);
    // No block is marked twice on a fresh fs: the mark count is the block count.
    assertEquals(res.blocks, res.markCount);
    assertEquals(res.first, 0);
    assert(res.rss < 200 * 1048576, `RSS ${Math.round(res.rss / 1048576)} MiB`);
  },
});
