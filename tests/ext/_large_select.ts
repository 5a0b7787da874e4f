/**
 * Helper process for large_test.ts: opens an ext image, computes the e2image selection, and
 * prints its size and this process's peak-ish RSS as JSON.
 *
 * @module
 */
import { ExtVolume } from "../../lib/ext/mod.ts";
import { openSource } from "../../lib/io/mod.ts";

if (import.meta.main) {
  const src = openSource(Deno.args[0]!);
  const vol = ExtVolume.open(src);
  const sel = vol.e2imageSelection();
  let blocks = 0;
  for (const e of sel.blocks) blocks += e.count;
  console.log(JSON.stringify({
    blocksCount: vol.blocksCount,
    blocks,
    first: sel.blocks[0]?.start,
    markCount: sel.markCount,
    rss: Deno.memoryUsage().rss,
  }));
  src.close();
}
