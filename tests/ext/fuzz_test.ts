/**
 * Seeded differential fuzzing: random byte mutations of fixture metadata (superblock,
 * descriptors, inode tables, extent blocks, directories), each run through e2image and through
 * lib/ext. Exit status, warnings, fatal message, -s reports and image bytes must agree; only
 * fsimage's domain errors may escape, and every run must finish quickly.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  ExtVolume,
  scrambleDirBlock,
  ScrambleState,
  unixPastEndMessage,
} from "../../lib/ext/mod.ts";
import { copyExtents, MemorySource, openSink, openSource } from "../../lib/io/mod.ts";
import { blocksToBytes } from "../../lib/_internal/extents.ts";
import { CorruptImageError, FsimageError, UnsupportedFeatureError } from "../../lib/errors.ts";
import { needs, run, tempDir } from "../_helpers.ts";
import { extFixture } from "./_fixtures.ts";

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function mutate(img: Uint8Array, r: () => number, lo: number, hi: number): Uint8Array {
  const m = img.slice();
  const n = 1 + Math.floor(r() * 6);
  for (let k = 0; k < n; k++) m[lo + Math.floor(r() * (hi - lo))] = Math.floor(r() * 256);
  return m;
}

interface Campaign {
  fixture: string;
  flag: "-r" | "-ra" | "-rs";
  /** Mutated byte range, in blocks of the fixture. */
  blocks: [number, number];
  seed: number;
}

const CAMPAIGNS: Campaign[] = [
  { fixture: "ext4-uninit", flag: "-r", blocks: [1, 4], seed: 1 },
  { fixture: "ext4-default", flag: "-ra", blocks: [35, 36], seed: 2 },
  { fixture: "ext4-deep", flag: "-r", blocks: [80, 1200], seed: 3 },
  { fixture: "ext2-1k", flag: "-rs", blocks: [36, 40], seed: 4 },
  { fixture: "ext3-htree", flag: "-rs", blocks: [1, 1200], seed: 5 },
  { fixture: "ext4-metabg", flag: "-r", blocks: [1, 200], seed: 6 },
];

const ITERATIONS = 40;

for (const c of CAMPAIGNS) {
  Deno.test({
    name: `fuzzed ${c.fixture} (${c.flag}, blocks ${c.blocks[0]}..${c.blocks[1]}): same as e2image`,
    ...needs("e2image", "mkfs.ext4", "timeout"),
    fn() {
      using tmp = tempDir("fsimage-ext-fuzz-");
      const img = Deno.readFileSync(extFixture(c.fixture));
      const bs = 1024 << img[1024 + 0x18]!;
      const r = rng(c.seed);
      const path = `${tmp.path}/f.img`, want = `${tmp.path}/w.raw`, got = `${tmp.path}/g.raw`;
      for (let it = 0; it < ITERATIONS; it++) {
        const m = mutate(img, r, c.blocks[0] * bs, c.blocks[1] * bs);
        Deno.writeFileSync(path, m);
        for (const f of [want, got]) {
          try {
            Deno.removeSync(f);
          } catch {
            // absent
          }
        }
        const o = run("timeout", ["5", "e2image", c.flag, path, want]);
        if (o.code === 124) continue; // e2image spins (e.g. a wrapped itable_unused count)
        const wantErr = o.err.split("\n").slice(1).filter((l) => l !== "")
          .map((l) => l.replace(/^\S*e2image: /, "e2image: "));
        const wantOut = o.out.split("\n").filter((l) =>
          l !== "" && !l.startsWith("Couldn't find valid") && !l.includes(" contains ")
        );
        const lines: string[] = [], outs: string[] = [];
        let code = 0;
        const src = openSource(path);
        try {
          const v = ExtVolume.open(src, {
            pastEndMessage: (off) => unixPastEndMessage("file", off),
          });
          const sel = v.e2imageSelection({
            allData: c.flag === "-ra",
            scramble: c.flag === "-rs",
            onWarning: (l) => lines.push(l),
          });
          const scr = new Set<number>();
          for (const e of sel.scrambleBlocks) {
            for (let i = 0; i < e.count; i++) scr.add(e.start + i);
          }
          const st = new ScrambleState();
          const sink = openSink(got, { mode: "create" });
          try {
            copyExtents(src, sink, blocksToBytes(sel.blocks, v.blockSize), {
              blockSize: v.blockSize,
              size: v.blocksCount * v.blockSize,
              onReadError: () => true,
              transform: (off, b) => {
                const blk = off / v.blockSize;
                if (scr.has(blk)) scrambleDirBlock(b, blk, st, (l) => outs.push(l));
              },
            });
          } finally {
            sink.close();
          }
        } catch (e) {
          code = 1;
          if (e instanceof CorruptImageError) {
            lines.push(
              `e2image: ${e.details.compat} ${e.details.context ?? `while trying to open ${path}`}`,
            );
          } else if (e instanceof UnsupportedFeatureError) {
            lines.push(`e2image: ${e.compat} while trying to open ${path}`);
          } else throw e;
        } finally {
          src.close();
        }
        const ctx = `${c.fixture} iteration ${it}`;
        assertEquals(code, o.code, `${ctx}: ${o.err}`);
        assertEquals(lines, wantErr.filter((l) => !l.includes("error reading block")), ctx);
        if (code === 0) {
          assertEquals(run("cmp", [want, got]).code, 0, `${ctx}: bytes differ`);
          assertEquals(outs, wantOut, ctx);
        }
      }
    },
  });
}

Deno.test({
  name: "fuzzed images give only domain errors, quickly",
  ...needs("mkfs.ext4"),
  fn() {
    for (
      const [fixture, seed] of [["ext4-deep", 7], ["ext4-bigalloc", 8], ["ext2-hurd", 9]] as const
    ) {
      const img = Deno.readFileSync(extFixture(fixture));
      const r = rng(seed);
      for (let it = 0; it < 150; it++) {
        const m = mutate(img, r, 1024, Math.min(img.length, 1 << 20));
        const t0 = performance.now();
        try {
          const v = ExtVolume.open(new MemorySource(m));
          v.e2imageSelection({ allData: r() < 0.5, scramble: true, onWarning: () => {} });
          for (let g = 0; g < Math.min(v.groupCount, 3); g++) {
            v.blockBitmap(g);
            v.inodeBitmap(g);
          }
        } catch (e) {
          assert(e instanceof FsimageError, `${fixture} iteration ${it}: ${e}`);
        }
        assert(performance.now() - t0 < 3000, `${fixture} iteration ${it} is slow`);
      }
    }
  },
});
