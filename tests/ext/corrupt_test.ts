/**
 * Corrupt file systems: the warnings, fatal messages and bytes of e2image -r, reproduced.
 * Each case corrupts a fixture copy with debugfs or dd, runs e2image, and compares stderr
 * (after the banner), the exit status and, on success, the output bytes.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { CorruptImageError } from "../../lib/errors.ts";
import { ExtVolume, scrambleDirBlock, ScrambleState } from "../../lib/ext/mod.ts";
import { copyExtents, openSink, openSource } from "../../lib/io/mod.ts";
import { blocksToBytes } from "../../lib/_internal/extents.ts";
import { mustRun, needs, run, tempDir } from "../_helpers.ts";
import { extFixture } from "./_fixtures.ts";

interface Case {
  name: string;
  fixture: string;
  corrupt: (img: string) => void;
  /** e2image flag, default "-r" (also "-ra"). */
  flag?: "-r" | "-ra" | "-rs";
  /** e2image prints something on stdout (the -s corruption reports). */
  stdout?: boolean;
}

/** Patches bytes of block `blockOf(img)` at `offset` with little-endian u32/u16 `values`. */
function patchBlock(
  blockOf: (img: string) => number,
  edit: (block: DataView, img: string) => void,
) {
  return (img: string) => {
    using f = Deno.openSync(img, { read: true, write: true });
    const sb = new Uint8Array(1024);
    f.seekSync(1024, Deno.SeekMode.Start);
    f.readSync(sb);
    const bs = 1024 << sb[0x18]!;
    const blk = blockOf(img);
    const buf = new Uint8Array(bs);
    f.seekSync(blk * bs, Deno.SeekMode.Start);
    f.readSync(buf);
    edit(new DataView(buf.buffer), img);
    f.seekSync(blk * bs, Deno.SeekMode.Start);
    f.writeSync(buf);
  };
}

function debugfs(cmd: string) {
  return (img: string) => void mustRun("debugfs", ["-w", "-R", cmd, img]);
}

function zeroBlock(blockOf: (img: string) => number, bs: number) {
  return (img: string) => {
    using f = Deno.openSync(img, { write: true });
    f.seekSync(blockOf(img) * bs, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array(bs));
  };
}

/** The first extent tree block (index or leaf) of `path`, from debugfs. */
function treeBlock(path: string, which: "ETB0" | "ETB1") {
  return (img: string) => {
    const out = run("debugfs", ["-R", `blocks ${path}`, img]).out;
    const stat = run("debugfs", ["-R", `stat ${path}`, img]).out;
    const m = stat.match(new RegExp(`\\(${which}\\):(\\d+)`));
    if (!m) throw new Error(`no ${which} for ${path}: ${out.slice(0, 100)}`);
    return Number(m[1]);
  };
}

/** The first data block of directory `path`, from debugfs. */
function dirBlock(path: string) {
  return (img: string) => {
    const out = run("debugfs", ["-R", `blocks ${path}`, img]).out.trim();
    return Number(out.split(/\s+/)[0]);
  };
}

/** The inode table block holding inode `ino`, from debugfs imap. */
function imapBlock(ino: number) {
  return (img: string) => {
    const m = run("debugfs", ["-R", `imap <${ino}>`, img]).out.match(/located at block (\d+)/);
    if (!m) throw new Error(`imap <${ino}> failed`);
    return Number(m[1]);
  };
}

function truncateTo(bytes: number) {
  return (img: string) => Deno.truncateSync(img, bytes);
}

const CASES: Case[] = [
  {
    name: "bad IND pointer (warning, error forgotten)",
    fixture: "ext2-1k",
    corrupt: debugfs("sif /ind.bin block[IND] 99999999"),
  },
  {
    name: "bad DIND pointer (fatal)",
    fixture: "ext2-1k",
    corrupt: debugfs("sif /ind.bin block[DIND] 99999999"),
  },
  {
    name: "garbage i_file_acl",
    fixture: "ext4-default",
    corrupt: debugfs("sif /data.bin file_acl 99999999"),
  },
  {
    name: "zeroed extent leaf",
    fixture: "ext4-deep",
    corrupt: zeroBlock(treeBlock("/frag.bin", "ETB1"), 1024),
  },
  {
    name: "zeroed extent index",
    fixture: "ext4-deep",
    corrupt: zeroBlock(treeBlock("/frag.bin", "ETB0"), 1024),
  },
  {
    name: "extent index pointing at itself (cycle)",
    fixture: "ext4-deep",
    corrupt: patchBlock(treeBlock("/frag.bin", "ETB0"), (v, img) => {
      v.setUint32(12 + 4, treeBlock("/frag.bin", "ETB0")(img), true);
    }),
  },
  {
    name: "every extent index entry sharing one leaf",
    fixture: "ext4-deep",
    flag: "-ra",
    corrupt: patchBlock(treeBlock("/frag.bin", "ETB0"), (v) => {
      const n = v.getUint16(2, true);
      const leaf = v.getUint32(12 + 4, true);
      for (let i = 1; i < n; i++) v.setUint32(12 + 12 * i + 4, leaf, true);
    }),
  },
  {
    name: "overlapping leaf extents (libext2fs skips the next one too)",
    fixture: "ext4-deep",
    flag: "-ra",
    corrupt: patchBlock(treeBlock("/frag.bin", "ETB1"), (v) => {
      v.setUint32(12 + 12 * 1, 0, true); // second extent starts at logical 0 again
      v.setUint32(12 + 12 * 4, 1, true); // fifth overlaps the fourth partly
    }),
  },
  {
    name: "extent pointing past the end (-ra warnings)",
    fixture: "ext4-deep",
    flag: "-ra",
    corrupt: patchBlock(treeBlock("/frag.bin", "ETB1"), (v) => {
      v.setUint16(12 + 12 * 2 + 4, 3, true); // ee_len 3
      v.setUint32(12 + 12 * 2 + 8, 8190, true); // ee_start: 8190..8192, fs has 8192 blocks
    }),
  },
  {
    name: "directory entry with a bad rec_len (-s)",
    fixture: "ext4-default",
    flag: "-rs",
    stdout: true,
    corrupt: patchBlock(dirBlock("/sub"), (v) => {
      // "." is 12 bytes, ".." follows: give ".." a rec_len that is not a multiple of 4.
      v.setUint16(12 + 4, 4083, true);
    }),
  },
  {
    name: "directory entry with a bad name_len (-s)",
    fixture: "ext4-default",
    flag: "-rs",
    stdout: true,
    corrupt: patchBlock(dirBlock("/sub"), (v) => {
      v.setUint8(6, 10); // "." claims a 10-byte name in its 12-byte record
    }),
  },
  {
    name: "scrambled htree directory (-s)",
    fixture: "ext3-htree",
    flag: "-rs",
    corrupt: () => {},
  },
  {
    name: "bad block list covering an inode table block",
    fixture: "ext2-1k",
    corrupt: (img) => debugfs(`sif <1> block[0] ${imapBlock(13)(img)}`)(img),
  },
  {
    name: "bad block list with an out-of-range entry (ignored)",
    fixture: "ext4-default",
    corrupt: debugfs("sif <1> block[0] 99999999"),
  },
  {
    name: "source truncated inside the inode table",
    fixture: "ext2-1k",
    corrupt: truncateTo(100 * 1024),
  },
  {
    name: "source truncated inside a later group's inode table",
    fixture: "ext2-2groups",
    corrupt: truncateTo(8300 * 1024),
  },
  {
    name: "source truncated before an extent index block",
    fixture: "ext4-deep",
    corrupt: (img) => truncateTo(treeBlock("/frag.bin", "ETB0")(img) * 1024)(img),
  },
  {
    name: "three inodes sharing one EA block",
    fixture: "ext4-default",
    corrupt: (img) => {
      const m = run("debugfs", ["-R", "stat /hello.txt", img]).out.match(/File ACL: (\d+)/);
      if (!m) throw new Error("no EA block");
      debugfs(`sif /data.bin file_acl ${m[1]}`)(img);
      debugfs(`sif /sub file_acl ${m[1]}`)(img);
    },
  },
  {
    name: "HURD translator on a small file, a fast symlink and out of range",
    fixture: "ext2-hurd",
    corrupt: (img) => {
      debugfs("sif /hello.txt translator 7000")(img);
      debugfs("sif /fast-link translator 7001")(img);
      debugfs("sif /sub/inner.txt translator 99999")(img);
      debugfs("sif /slow-link translator 99998")(img);
    },
  },
  {
    name: "HURD translator with -ra",
    fixture: "ext2-hurd",
    flag: "-ra",
    corrupt: debugfs("sif /hello.txt translator 7000"),
  },
  {
    name: "corrupt extent root (ignored)",
    fixture: "ext4-default",
    corrupt: debugfs("sif /data.bin block[0] 0"),
  },
  {
    name: "inode table out of range",
    fixture: "ext4-metabg",
    corrupt: debugfs("set_bg 0 inode_table 9999999"),
  },
  {
    name: "inode table moved onto other blocks",
    fixture: "ext2-1k",
    corrupt: debugfs("set_bg 0 inode_table 100"),
  },
  {
    name: "inode table out of range in a later group",
    fixture: "ext4-1k",
    corrupt: debugfs("set_bg 1 inode_table 9999999"),
  },
  {
    name: "inode table missing in a later group",
    fixture: "ext4-uninit",
    corrupt: debugfs("set_bg 1 inode_table 0"),
  },
];

for (const c of CASES) {
  Deno.test({
    name: `e2imageSelection() reports like e2image -r: ${c.name}`,
    ...needs("e2image", "debugfs", "mkfs.ext4"),
    fn() {
      using tmp = tempDir("fsimage-ext-corrupt-");
      const img = `${tmp.path}/c.img`;
      Deno.copyFileSync(extFixture(c.fixture), img);
      c.corrupt(img);
      const want = `${tmp.path}/want.raw`, got = `${tmp.path}/got.raw`;
      const flag = c.flag ?? "-r";
      const r = run("e2image", [flag, img, want]);
      const wantLines = r.err.split("\n").slice(1).filter((l) => l !== "")
        .map((l) => l.replace(/^\S*e2image: /, "e2image: "));
      const lines: string[] = [];
      const outLines: string[] = [];
      let markCount = -1;
      let code = 0;
      const src = openSource(img);
      try {
        const v = ExtVolume.open(src);
        const sel = v.e2imageSelection({
          allData: flag === "-ra",
          scramble: flag === "-rs",
          onWarning: (l) => lines.push(l),
        });
        markCount = sel.markCount;
        const bs = v.blockSize;
        const scr = new Set<number>();
        for (const e of sel.scrambleBlocks) for (let i = 0; i < e.count; i++) scr.add(e.start + i);
        const state = new ScrambleState();
        const sink = openSink(got, { mode: "create" });
        copyExtents(src, sink, blocksToBytes(sel.blocks, bs), {
          blockSize: bs,
          size: v.blocksCount * bs,
          transform: (off, b) => {
            if (scr.has(off / bs)) scrambleDirBlock(b, off / bs, state, (l) => outLines.push(l));
          },
        });
        sink.close();
      } catch (e) {
        if (!(e instanceof CorruptImageError)) throw e;
        lines.push(`e2image: ${e.details.compat} ${e.details.context}`);
        code = 1;
      } finally {
        src.close();
      }
      assertEquals(lines, wantLines);
      assertEquals(code, r.code);
      if (code === 0) {
        assertEquals(run("cmp", [want, got]).code, 0);
        assertEquals(outLines, r.out.split("\n").filter((l) => l !== ""));
        assertEquals(outLines.length > 0, c.stdout ?? false);
        // The progress total (duplicates and rejected marks included).
        const p = run("e2image", [`${flag}p`, img, `${tmp.path}/p.raw`]);
        const m = p.err.match(/Copied \d+ \/ (\d+) blocks/);
        assertEquals(markCount, m ? Number(m[1]) : -1, p.err);
      }
    },
  });
}
