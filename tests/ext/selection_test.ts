/**
 * Differential tests of the e2image block selection: for every fixture, copying the selected
 * blocks (with -s scrambling) must give exactly the bytes `e2image -r`, `-ra` and `-rs` write.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ExtVolume, scrambleDirBlock, ScrambleState } from "../../lib/ext/mod.ts";
import { copyExtents, openSink, openSource } from "../../lib/io/mod.ts";
import { blocksToBytes } from "../../lib/_internal/extents.ts";
import { needs, run, tempDir } from "../_helpers.ts";
import { extFixture, extFixtureNames } from "./_fixtures.ts";

function cloneRaw(img: string, out: string, mode: { allData?: boolean; scramble?: boolean }) {
  const src = openSource(img);
  try {
    const vol = ExtVolume.open(src);
    const sel = vol.e2imageSelection(mode);
    const bs = vol.blockSize;
    const scr = new Set<number>();
    for (const e of sel.scrambleBlocks) for (let i = 0; i < e.count; i++) scr.add(e.start + i);
    const state = new ScrambleState();
    const sink = openSink(out, { mode: "create" });
    try {
      copyExtents(src, sink, blocksToBytes(sel.blocks, bs), {
        blockSize: bs,
        size: vol.blocksCount * bs,
        ...(mode.scramble
          ? {
            transform: (off: number, b: Uint8Array) => {
              if (scr.has(off / bs)) scrambleDirBlock(b, off / bs, state, () => {});
            },
          }
          : {}),
      });
    } finally {
      sink.close();
    }
    return sel;
  } finally {
    src.close();
  }
}

function cmpFiles(a: string, b: string): boolean {
  return run("cmp", ["-s", a, b]).code === 0;
}

const MODES: [string, { allData?: boolean; scramble?: boolean }][] = [
  ["-r", {}],
  ["-ra", { allData: true }],
  ["-rs", { scramble: true }],
];

for (const name of extFixtureNames) {
  Deno.test({
    name: `e2imageSelection() copies what e2image -r/-ra/-rs copy: ${name}`,
    ...needs("e2image", "mkfs.ext4", "e2fsck"),
    fn() {
      using tmp = tempDir("fsimage-ext-sel-");
      const img = extFixture(name);
      const origClean = run("e2fsck", ["-fn", img]).code === 0;
      for (const [flag, mode] of MODES) {
        const want = `${tmp.path}/want${flag}.raw`, got = `${tmp.path}/got${flag}.raw`;
        const r = run("e2image", [flag, img, want]);
        assertEquals(r.code, 0, r.err);
        const sel = cloneRaw(img, got, mode);
        assert(cmpFiles(want, got), `${name} ${flag}: bytes differ from e2image`);
        {
          // markCount is e2image's progress total.
          const p = run("e2image", [`${flag}p`, img, `${tmp.path}/p${flag}.raw`]);
          const m = p.err.match(/Copied \d+ \/ (\d+) blocks/);
          assert(m, p.err);
          assertEquals(sel.markCount, Number(m[1]), `${name} ${flag}p total`);
        }
        if (origClean && flag !== "-rs") {
          const f = run("e2fsck", ["-fn", got]);
          assertEquals(f.code, 0, `${name} ${flag}: e2fsck -fn on the clone: ${f.out}`);
        }
      }
    },
  });
}
