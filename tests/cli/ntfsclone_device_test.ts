/**
 * `fsimage ntfsclone -O /dev/loopN` (root only): raw clones and restores write the used
 * clusters and leave the rest of the device untouched, exactly as ntfsclone; a too small
 * device and a metadata clone without --force are refused with ntfsclone's messages.
 */
import assert from "node:assert/strict";
import { mustRun, needs, run, runFsimage, tempDir } from "../_helpers.ts";
import { ntfsFixture } from "../ntfs/_fixtures.ts";

function withLoop(file: string, fn: (dev: string) => void): void {
  const dev = mustRun("losetup", ["-f", "--show", file]).out.trim();
  try {
    fn(dev);
  } finally {
    run("losetup", ["-d", dev]);
  }
}

Deno.test({
  name: "ntfsclone -O to a loop device: raw clone, restore and refusals match ntfsclone",
  ...needs("ntfsclone", "losetup", "root"),
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k");
    const img = `${d.path}/vol.simg`;
    assert.equal(run("ntfsclone", ["-q", "-s", "-o", img, vol]).code, 0);
    const backing = `${d.path}/dev.img`;
    const fill = () => Deno.writeFileSync(backing, new Uint8Array(16 << 20).fill(0xaa));
    for (const args of [["-O"], ["-r", "-O"]]) {
      const src = args[0] === "-r" ? img : vol;
      fill();
      let ref = "", ours = "";
      withLoop(backing, (dev) => {
        const r = run("ntfsclone", [...args, dev, src]);
        assert.equal(r.code, 0, r.out);
        ref = r.out;
      });
      const want = Deno.readFileSync(backing);
      fill();
      withLoop(backing, (dev) => {
        const r = runFsimage(["ntfsclone", ...args, dev, src], { flags: ["-A"] });
        assert.equal(r.code, 0, r.err);
        ours = r.out;
      });
      assert.equal(ours, ref);
      assert.deepEqual(Deno.readFileSync(backing), want, `${args.join(" ")}: device bytes`);
    }
    Deno.writeFileSync(backing, new Uint8Array(8 << 20));
    withLoop(backing, (dev) => {
      for (const args of [["-O", dev, vol], ["-m", "-O", dev, vol], ["-r", "-O", dev, img]]) {
        const r = run("ntfsclone", args);
        const t = runFsimage(["ntfsclone", ...args], { flags: ["-A"] });
        assert.equal(t.code, r.code, args.join(" "));
        assert.equal(t.out, r.out, args.join(" "));
        assert.equal(t.err, r.err, args.join(" "));
      }
    });
  },
});
