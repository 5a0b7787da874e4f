/**
 * `fsimage ntfsclone --rescue` over a source with unreadable sectors (a FaultySource): the
 * bad-sector box and exit status 1 without it; with it, each unreadable sector becomes
 * "BadSectoR\0" and '?' bytes, everything else is copied, and the warnings name the sectors.
 */
import assert from "node:assert/strict";
import { BufferWriter } from "../../lib/cli/context.ts";
import { ntfscloneCommand } from "../../lib/cli/ntfsclone.ts";
import { FaultySource, MemorySource } from "../../lib/io/mod.ts";
import { AttrType, LCN_HOLE, NtfsVolume } from "../../lib/ntfs/mod.ts";
import { needs, run, runFsimage, tempDir } from "../_helpers.ts";
import { ntfsFixture } from "../ntfs/_fixtures.ts";

function ctx() {
  return {
    programName: "ntfsclone",
    stdout: new BufferWriter(),
    stderr: new BufferWriter(),
    debug: false,
  };
}

/** A user-data cluster of the fixture (a non-resident $DATA run of a user file). */
function userCluster(bytes: Uint8Array): number {
  const vol = NtfsVolume.open(new MemorySource(bytes));
  for (const ino of vol.walk()) {
    if (ino.inode < 64) continue;
    for (const w of ino.attributes) {
      const r = w.attr.runs.find((x) => x.lcn !== LCN_HOLE);
      if (w.attr.type === AttrType.DATA && r && r.length >= 2) return r.lcn + 1;
    }
  }
  throw new Error("no user data cluster");
}

const volBytes = () => Deno.readFileSync(ntfsFixture("c4k"));

Deno.test("ntfsclone without --rescue stops at an unreadable cluster with the bad-sector box", async () => {
  using d = tempDir();
  const bytes = volBytes();
  const cs = 4096;
  const bad = userCluster(bytes) * cs + 1024;
  const src = new FaultySource(new MemorySource(bytes, "vol"), [{ offset: bad, length: 512 }]);
  for (const mode of [["-s"], []]) {
    const c = ctx();
    const st = await ntfscloneCommand([...mode, "-q", "-O", `${d.path}/out`, "vol"], c, {
      source: src,
    });
    assert.equal(st, 1);
    assert.ok(
      c.stdout.text.includes("* WARNING: The disk has one or more bad sectors. This means"),
    );
    assert.ok(c.stdout.text.endsWith("ERROR: Disk is faulty, can't make full backup!"));
  }
});

Deno.test({
  name: "ntfsclone --rescue marks unreadable sectors and copies the rest (raw clone and image)",
  ...needs("ntfsclone"),
  async fn() {
    using d = tempDir();
    const bytes = volBytes();
    const cs = 4096;
    const bad = userCluster(bytes) * cs + 1024;
    const src = new FaultySource(new MemorySource(bytes, "vol"), [{ offset: bad, length: 512 }]);
    // What the clone must hold: the real clone, with that sector replaced by the marker.
    const refClone = `${d.path}/ref.raw`;
    Deno.writeFileSync(`${d.path}/vol.img`, bytes);
    assert.equal(run("ntfsclone", ["-q", "-o", refClone, `${d.path}/vol.img`]).code, 0);
    const want = Deno.readFileSync(refClone);
    want.fill(0x3f, bad, bad + 512);
    want.set(new TextEncoder().encode("BadSectoR\0"), bad);

    const c = ctx();
    assert.equal(
      await ntfscloneCommand(["--rescue", "-q", "-o", `${d.path}/ts.raw`, "vol"], c, {
        source: src,
      }),
      0,
    );
    assert.ok(c.stdout.text.includes(`WARNING: Can't read sector at ${bad}, lost data.\n`));
    assert.deepEqual(Deno.readFileSync(`${d.path}/ts.raw`), want);

    const c2 = ctx();
    assert.equal(
      await ntfscloneCommand(["--rescue", "-s", "-q", "-o", `${d.path}/ts.simg`, "vol"], c2, {
        source: src,
      }),
      0,
    );
    assert.ok(c2.stdout.text.includes(`WARNING: Can't read sector at ${bad}, lost data.\n`));
    // The real ntfsclone restores our rescued image to the same bytes.
    assert.equal(
      run("ntfsclone", ["-q", "-r", "-o", `${d.path}/back.raw`, `${d.path}/ts.simg`]).code,
      0,
    );
    assert.deepEqual(Deno.readFileSync(`${d.path}/back.raw`), want);
  },
});

Deno.test("ntfsclone -m -s --rescue marks an unreadable metadata sector in the image", async () => {
  using d = tempDir();
  const bytes = volBytes();
  const vol = NtfsVolume.open(new MemorySource(bytes));
  // The first cluster of $LogFile is always copied by metadata images.
  let logLcn = -1;
  for (const ino of vol.walk()) {
    if (ino.inode !== 2) continue;
    for (const w of ino.attributes) {
      if (w.attr.type === AttrType.DATA) logLcn = w.attr.runs[0]!.lcn;
    }
  }
  const bad = logLcn * 4096 + 512;
  const src = new FaultySource(new MemorySource(bytes, "vol"), [{ offset: bad, length: 512 }]);
  const c = ctx();
  const img = `${d.path}/meta.simg`;
  assert.equal(
    await ntfscloneCommand(["-m", "-s", "--rescue", "-q", "-o", img, "vol"], c, { source: src }),
    1 - 1,
  );
  assert.ok(c.stdout.text.includes(`WARNING: Can't read sector at ${bad}, lost data.\n`));
  // Restore it (in a subprocess: a real run drops every permission) and look at the sector.
  const r = runFsimage(["ntfsclone", "-r", "-q", "-o", `${d.path}/back.raw`, img]);
  assert.equal(r.code, 0, r.out + r.err);
  const back = Deno.readFileSync(`${d.path}/back.raw`);
  assert.equal(new TextDecoder().decode(back.subarray(bad, bad + 9)), "BadSectoR");
  assert.ok(back.subarray(bad + 10, bad + 512).every((b) => b === 0x3f));
  // Without --rescue the run stops with the bad-sector box.
  const f = ctx();
  assert.equal(await ntfscloneCommand(["-m", "-s", "-q", "-O", img, "vol"], f, { source: src }), 1);
  assert.ok(f.stdout.text.endsWith("ERROR: Disk is faulty, can't make full backup!"));
});
