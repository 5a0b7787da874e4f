/**
 * Free space: a file with the secret written and deleted through a mount leaves its contents
 * in unallocated blocks. The default audit does not read free space; with `freeSpace` it finds
 * them and the scrub zeroes them, keeping e2fsck / ntfsfix clean.
 */
import assert from "node:assert/strict";
import { mustRun, needs, tempDir } from "../_helpers.ts";
import { openSink, openSource } from "../../lib/io/mod.ts";
import { auditExt } from "../../lib/ext/audit.ts";
import { scrubExt } from "../../lib/ext/scrub.ts";
import { auditNtfs } from "../../lib/ntfs/audit.ts";
import { scrubNtfs } from "../../lib/ntfs/scrub.ts";
import { e2fsck, ntfsfix, SECRET, secretHits } from "./_fixtures.ts";

/** Writes a 64 KiB file full of the secret through a mount, syncs, deletes it, unmounts. */
function deletedFile(img: string, mount: string[]): void {
  const mnt = `${img}-mnt`;
  Deno.mkdirSync(mnt);
  mustRun(mount[0]!, [...mount.slice(1), img, mnt]);
  try {
    Deno.writeTextFileSync(`${mnt}/doomed.txt`, `${SECRET} `.repeat(3300));
    mustRun("sync", []);
    Deno.removeSync(`${mnt}/doomed.txt`);
  } finally {
    mustRun("umount", [mnt]);
  }
}

Deno.test({
  name: "freeSpace finds and zeroes the contents of a deleted ext4 file",
  ...needs("root", "mkfs.ext4", "e2fsck"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = `${tmp.path}/e.img`;
    mustRun("truncate", ["-s", "8M", img]);
    mustRun("mkfs.ext4", ["-q", "-F", "-O", "^has_journal", img]);
    deletedFile(img, ["mount", "-o", "loop"]);
    assert.ok(secretHits(img).utf8 > 1000);
    const src = openSource(img);
    const plain = auditExt(src);
    const deep = auditExt(src, { freeSpace: true });
    src.close();
    assert.ok(!plain.findings.some((f) => f.kind === "free-space"));
    const free = deep.findings.find((f) => f.kind === "free-space")!;
    assert.ok(free.count >= 16 && free.samples[0]!.includes(SECRET), JSON.stringify(free));
    const sink = openSink(img, { mode: "existing" });
    scrubExt(sink, { freeSpace: true });
    sink.close();
    assert.deepEqual(secretHits(img), { utf8: 0, utf16: 0 });
    const again = openSource(img);
    assert.ok(auditExt(again, { freeSpace: true }).clean);
    again.close();
    assert.equal(e2fsck(img).code, 0);
  },
});

Deno.test({
  name: "freeSpace finds and zeroes the contents of a deleted NTFS file",
  ...needs("root", "mkntfs", "ntfs-3g", "ntfsfix"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = `${tmp.path}/n.img`;
    mustRun("truncate", ["-s", "8M", img]);
    mustRun("mkntfs", ["-q", "-F", "-f", img]);
    deletedFile(img, ["ntfs-3g"]);
    assert.ok(secretHits(img).utf8 > 1000);
    const src = openSource(img);
    const deep = auditNtfs(src, { freeSpace: true });
    src.close();
    const free = deep.findings.find((f) => f.kind === "free-space")!;
    assert.ok(free.count >= 16 && free.samples[0]!.includes(SECRET), JSON.stringify(free));
    const sink = openSink(img, { mode: "existing" });
    scrubNtfs(sink, { freeSpace: true });
    sink.close();
    assert.deepEqual(secretHits(img), { utf8: 0, utf16: 0 });
    const again = openSource(img);
    assert.ok(auditNtfs(again, { freeSpace: true }).clean);
    again.close();
    assert.equal(ntfsfix(img).code, 0);
  },
});
