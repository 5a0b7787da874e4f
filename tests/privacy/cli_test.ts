/**
 * `fsimage audit` and `fsimage scrub` as a user runs them (deno run main.ts, narrow
 * permissions): exit statuses 0/1/2, the text and JSON reports, the permission message, and
 * the scrub's summary.
 */
import assert from "node:assert/strict";
import { mustRun, needs, runFsimage, tempDir } from "../_helpers.ts";
import { buildExtUnmounted, SECRET } from "./_fixtures.ts";

const MKFS = needs("mkfs.ext4", "debugfs", "e2fsck");

Deno.test({
  name: "fsimage audit reports leaks (1), scrub cleans in place (0), audit is then clean (0)",
  ...MKFS,
  fn() {
    using tmp = tempDir("fsp-");
    const img = buildExtUnmounted(tmp.path, "cli");
    const r = runFsimage(["audit", img], { flags: [`--allow-read=${img}`] });
    assert.equal(r.code, 1, r.err);
    assert.match(r.out, /^LEAK {2}names +\d+ {2}file and directory names: .*Zebulon-4711-Quokka/m);
    assert.match(r.out, /^LEAK {2}label +1 {2}volume label: "Zebulon-4711-Quo"$/m);
    assert.match(r.out, /^info {2}uuid +1 /m);
    assert.match(r.out, /kinds of identifying content found\n$/);

    const j = runFsimage(["audit", "--json", img], { flags: [`--allow-read=${img}`] });
    assert.equal(j.code, 1);
    const parsed = JSON.parse(j.out);
    assert.equal(parsed.format, "ext");
    assert.equal(parsed.clean, false);
    assert.ok(parsed.findings.some((f: { kind: string }) => f.kind === "xattr-values"));

    // Read permission alone: scrub explains what is missing and changes nothing.
    const denied = runFsimage(["scrub", img], { flags: [`--allow-read=${img}`] });
    assert.equal(denied.code, 1);
    assert.match(denied.err, /^scrub: missing permission to write .*--allow-write=/);

    const s = runFsimage(["scrub", img], {
      flags: [`--allow-read=${img}`, `--allow-write=${img}`],
    });
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /^wiped names +\d+ {2}file and directory names$/m);
    assert.ok(!s.out.includes(SECRET), "the summary does not repeat what it wiped");
    assert.match(s.out, /clean: nothing identifying left/);

    const again = runFsimage(["scrub", "--json", img], {
      flags: ["--allow-read", "--allow-write"],
    });
    assert.equal(again.code, 0, again.err);
    const summary = JSON.parse(again.out);
    assert.equal(summary.clean, true);
    assert.deepEqual(summary.left, []);
    assert.ok(summary.changed.every((f: object) => !("samples" in f)));

    const after = runFsimage(["audit", img], { flags: [`--allow-read=${img}`] });
    assert.equal(after.code, 0, after.out);
    assert.match(after.out, /^clean: nothing identifying found \(volume identifiers aside\)$/m);
    assert.equal(runFsimage(["audit", "--strict", "-q", img], { flags: ["--allow-read"] }).code, 1);
  },
});

Deno.test("fsimage audit/scrub usage errors and unreadable images exit 2", () => {
  using tmp = tempDir("fsp-");
  const junk = `${tmp.path}/junk.img`;
  Deno.writeFileSync(junk, new Uint8Array(4096).fill(7));
  const flags = ["--allow-read", "--allow-write"];
  assert.equal(runFsimage(["audit"], { flags }).code, 2);
  assert.equal(runFsimage(["audit", "--bogus", junk], { flags }).code, 2);
  const a = runFsimage(["audit", junk], { flags });
  assert.equal(a.code, 2);
  assert.match(a.err, /neither an ext2\/3\/4 nor an NTFS image/);
  assert.equal(runFsimage(["audit", `${tmp.path}/missing`], { flags }).code, 2);
  assert.equal(runFsimage(["scrub"], { flags }).code, 2);
  assert.equal(runFsimage(["scrub", "-"], { flags }).code, 2);
  const s = runFsimage(["scrub", junk], { flags });
  assert.equal(s.code, 1);
  assert.deepEqual(Deno.readFileSync(junk), new Uint8Array(4096).fill(7));
  const h = runFsimage(["audit", "--help"], { flags: [] });
  assert.equal(h.code, 0);
  assert.match(h.out, /^Usage: fsimage audit/);
});

Deno.test({
  name: "fsimage audit reads an e2image -Q QCOW2 image; scrub refuses it",
  ...needs("mkfs.ext4", "debugfs", "e2image"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = buildExtUnmounted(tmp.path, "q");
    const q = `${tmp.path}/q.qcow2`;
    const raw = `${tmp.path}/q.raw`;
    mustRun("e2image", ["-Q", img, q]);
    mustRun("e2image", ["-r", img, raw]);
    const flags = ["--allow-read"];
    const fromQ = runFsimage(["audit", "--json", q], { flags });
    const fromRaw = runFsimage(["audit", "--json", raw], { flags });
    assert.equal(fromQ.code, 1, fromQ.err);
    assert.deepEqual(JSON.parse(fromQ.out).findings, JSON.parse(fromRaw.out).findings);
    const before = Deno.readFileSync(q);
    const s = runFsimage(["scrub", q], { flags: ["--allow-read", "--allow-write"] });
    assert.equal(s.code, 1);
    assert.match(s.err, /scrub works on raw images; convert it first/);
    assert.deepEqual(Deno.readFileSync(q), before);
  },
});

Deno.test({
  name: "fsimage audit and scrub hold no permission once the image is open (even under -A)",
  ...MKFS,
  fn() {
    using tmp = tempDir("fsp-");
    const img = buildExtUnmounted(tmp.path, "perm");
    for (const cmd of ["audit", "scrub"]) {
      const r = runFsimage(["--debug", cmd, img], { flags: ["-A"] });
      assert.ok(r.code === 0 || r.code === 1, r.err);
      const line = r.err.split("\n").find((l) => l.includes("permissions after opening"));
      assert.equal(
        line,
        `${cmd}: permissions after opening: read=prompt write=prompt net=prompt env=prompt sys=prompt run=prompt ffi=prompt import=prompt`,
      );
    }
  },
});
