/**
 * scrubExt over the ext feature matrix (no mount needed: mkfs.ext4 -d + debugfs ea_set):
 * ext2, ext3, 1/2/64 KiB blocks, 64bit + meta_bg, bigalloc, inline_data, casefold, uninit_bg
 * without metadata_csum, 128-byte inodes. For the file system and its e2image -r image: the
 * secret is gone, the audit is clean and e2fsck -fn passes.
 */
import assert from "node:assert/strict";
import { mustRun, needs, tempDir } from "../_helpers.ts";
import { openSink, openSource } from "../../lib/io/mod.ts";
import { auditExt } from "../../lib/ext/audit.ts";
import { scrubExt } from "../../lib/ext/scrub.ts";
import { buildExtUnmounted, e2fsck, secretHits } from "./_fixtures.ts";

const VARIANTS: string[][] = [
  ["-t", "ext2"],
  ["-t", "ext3", "-b", "2048", "-I", "128"],
  ["-b", "1024"],
  ["-O", "64bit,meta_bg,^resize_inode"],
  ["-O", "bigalloc", "-C", "16384"],
  ["-b", "65536"],
  ["-O", "inline_data"],
  ["-O", "casefold"],
  ["-O", "^metadata_csum,uninit_bg"],
  ["-I", "128"],
];

for (const args of VARIANTS) {
  Deno.test({
    name: `scrubExt() leaves mkfs.ext4 ${args.join(" ")} clean and e2fsck-clean`,
    ...needs("mkfs.ext4", "debugfs", "e2image", "e2fsck"),
    fn() {
      using tmp = tempDir("fsp-");
      const fs = buildExtUnmounted(tmp.path, "m", args);
      const meta = `${tmp.path}/m.raw`;
      mustRun("e2image", ["-r", fs, meta]);
      for (const path of [fs, meta]) {
        const src = openSource(path);
        const before = auditExt(src);
        src.close();
        const kinds = before.findings.map((f) => f.kind);
        for (const k of ["names", "xattr-names", "xattr-values", "symlink-targets", "label"]) {
          assert.ok(kinds.includes(k as never), `${path}: audit misses ${k}`);
        }
        const sink = openSink(path, { mode: "existing" });
        scrubExt(sink);
        sink.close();
        assert.deepEqual(secretHits(path), { utf8: 0, utf16: 0 });
        const again = openSource(path);
        assert.ok(auditExt(again).clean);
        again.close();
        const fsck = e2fsck(path);
        assert.equal(fsck.code, 0, fsck.out);
      }
    },
  });
}
