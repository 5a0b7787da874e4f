/**
 * `fsimage ntfsclone` against the real ntfsclone 2022.10.3: the same output bytes (images, raw
 * clones, restores; files and stdout), the same stdout/stderr transcripts (progress lines
 * included) and the same exit statuses.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { MemorySource } from "../../lib/io/mod.ts";
import { AttrType, NtfsVolume } from "../../lib/ntfs/mod.ts";
import { MAIN, needs, run, runFsimage, type RunResult, tempDir } from "../_helpers.ts";
import {
  buildEmptyVolume,
  markBadClusters,
  ntfsFixture,
  patchAttributeByte,
  setDirty,
  toggleBitmapBit,
} from "../ntfs/_fixtures.ts";

const ORACLE = needs("ntfsclone");

interface Pair {
  ref: RunResult;
  ts: RunResult;
  refOut: string;
  tsOut: string;
}

/** Runs the real tool and ours with `args`, where OUT stands for a per-tool output path. */
function both(
  dir: string,
  args: string[],
  options: { stdin?: string; flags?: string[] } = {},
): Pair {
  const refOut = `${dir}/ref.out`, tsOut = `${dir}/ts.out`;
  for (const p of [refOut, tsOut]) {
    try {
      Deno.removeSync(p);
    } catch {
      // absent
    }
  }
  // Through sh so that argv[0] is "ntfsclone", as getopt's messages show it.
  const ref = run("sh", [
    "-c",
    'exec ntfsclone "$@"',
    "ntfsclone",
    ...args.map((a) => a === "OUT" ? refOut : a),
  ], options);
  const ts = runFsimage(["ntfsclone", ...args.map((a) => a === "OUT" ? tsOut : a)], options);
  return { ref, ts, refOut, tsOut };
}

function assertSameRun(p: Pair, what: string): void {
  assert.equal(p.ts.code, p.ref.code, `${what}: exit status (ours: ${p.ts.err})`);
  assert.equal(p.ts.err, p.ref.err, `${what}: stderr`);
  assert.ok(equalBytes(p.ts.stdout, p.ref.stdout), `${what}: stdout bytes differ`);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function assertSameFile(a: string, b: string, what: string): void {
  const x = Deno.readFileSync(a), y = Deno.readFileSync(b);
  assert.equal(y.length, x.length, `${what}: length`);
  assert.ok(equalBytes(x, y), `${what}: bytes differ`);
}

for (const name of ["c4k", "c512", "odd4k", "mftlist"] as const) {
  Deno.test({
    name:
      `ntfsclone --save-image of ${name} is byte-identical to ntfsclone's, to a file and to stdout`,
    ...ORACLE,
    fn() {
      using d = tempDir();
      const vol = ntfsFixture(name);
      const f = both(d.path, ["--save-image", "-o", "OUT", vol]);
      assertSameRun(f, "-s -o file");
      assertSameFile(f.refOut, f.tsOut, "image");
      const image = Deno.readFileSync(f.refOut);
      const s = both(d.path, ["-s", "-o", "-", vol]);
      assertSameRun(s, "-s -o -");
      assert.ok(equalBytes(s.ts.stdout, image), "stdout image = file image");
    },
  });

  Deno.test({
    name: `ntfsclone raw clone of ${name} equals ntfsclone's (sparse file, 0600, and stdout)`,
    ...ORACLE,
    fn() {
      using d = tempDir();
      const vol = ntfsFixture(name);
      const f = both(d.path, ["-o", "OUT", vol]);
      assertSameRun(f, "-o file");
      assertSameFile(f.refOut, f.tsOut, "clone");
      assert.equal(statSync(f.tsOut).mode & 0o777, 0o600);
      // Every used cluster is written, so the allocation matches too.
      assert.equal(statSync(f.tsOut).blocks, statSync(f.refOut).blocks);
      const s = both(d.path, ["-o", "-", vol]);
      assertSameRun(s, "-o -");
    },
  });
}

Deno.test({
  name: "ntfsclone --restore-image of a real image: file, stdout, stdin and -n match ntfsclone",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k");
    const img = `${d.path}/vol.simg`;
    assert.equal(run("ntfsclone", ["-q", "-s", "-o", img, vol]).code, 0);
    const f = both(d.path, ["-r", "-o", "OUT", img]);
    assertSameRun(f, "-r -o file");
    assertSameFile(f.refOut, f.tsOut, "restored file");
    assertSameRun(both(d.path, ["--restore-image", "-O", "-", img]), "-r -O -");
    assertSameRun(both(d.path, ["-r", "-o", "-", "-"], { stdin: img }), "-r from stdin");
    assertSameRun(both(d.path, ["-r", "-n", img]), "-r -n");
    // A metadata image: refused to stdout, no 100% line with -n, sparse file restored.
    const meta = `${d.path}/meta.simg`;
    assert.equal(run("ntfsclone", ["-q", "-m", "-s", "-o", meta, vol]).code, 0);
    assertSameRun(both(d.path, ["-r", "-o", "-", meta]), "-r -o - of a metadata image");
    assertSameRun(both(d.path, ["-r", "-n", meta]), "-r -n of a metadata image");
    const m = both(d.path, ["-r", "-o", "OUT", meta]);
    assertSameRun(m, "-r of a metadata image");
    assertSameFile(m.refOut, m.tsOut, "restored metadata image");
    // Our own image restores with the real tool to the real raw clone.
    const ours = `${d.path}/ours.simg`;
    assert.equal(runFsimage(["ntfsclone", "-q", "-s", "-o", ours, vol]).code, 0);
    assert.equal(run("ntfsclone", ["-r", "-n", ours]).code, 0);
  },
});

Deno.test({
  name: "ntfsclone option and refusal matrix: same messages, streams and exit statuses",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k");
    const exists = `${d.path}/exists`;
    Deno.writeTextFileSync(exists, "x");
    const cases: string[][] = [
      [],
      ["-h"],
      ["--help"],
      ["-V"],
      ["--version"],
      ["--bogus"],
      ["-x"],
      ["-o"],
      ["--output"],
      ["--res"],
      ["--quiet=3"],
      [vol],
      ["-o", "OUT"],
      ["-s", "-o", "OUT", "--", vol],
      ["-s", "-o", "OUT", vol, "extra"],
      ["-s", "-o", "OUT", "-o", "OUT", vol],
      ["-s", "-o", "OUT", "-"],
      ["-m", "-r", "-o", "OUT", vol],
      ["-m", "-o", "-", vol],
      ["--ignore-fs-check", "-o", "OUT", vol],
      ["-s", "-r", "-o", "OUT", vol],
      ["-n", vol],
      ["-n", "-o", "OUT", "-r", vol],
      ["-s", "-o", exists, vol],
      ["-s", "-o", "OUT", `${d.path}/missing.img`],
      ["-s", "-o", "OUT", d.path],
      ["-O", d.path, vol],
      ["-mst", "--full", "-O", "OUT", "-q", "-d", "--", vol],
      ["-r", "-o", "OUT", vol],
    ];
    for (const args of cases) {
      const p = both(d.path, args);
      assertSameRun(p, `ntfsclone ${args.join(" ")}`);
      assert.equal(existsSync(p.tsOut), existsSync(p.refOut), `${args.join(" ")}: output created`);
    }
    // Devices need -A under Deno (all permissions are dropped once the files are open).
    for (
      const args of [
        ["-s", "-O", "/dev/null", "-q", vol],
        ["-O", "/dev/null", vol],
        ["-s", "-o", "-", "/dev/null"],
        ["-s", "-o", "-", "/dev/zero"],
      ]
    ) {
      assertSameRun(both(d.path, args, { flags: ["-A"] }), `ntfsclone ${args.join(" ")}`);
    }
  },
});

Deno.test({
  name: "ntfsclone refuses a non-NTFS source and a truncated volume as ntfsclone does",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const zero = `${d.path}/zero.img`;
    Deno.writeFileSync(zero, new Uint8Array(1 << 20));
    assertSameRun(both(d.path, ["-s", "-o", "OUT", zero]), "zeros");
    assertSameRun(both(d.path, ["-s", "-o", "-", zero]), "zeros to stdout");
    const trunc = `${d.path}/trunc.img`;
    Deno.writeFileSync(trunc, Deno.readFileSync(ntfsFixture("c4k")).subarray(0, 4 << 20));
    const p = both(d.path, ["-s", "-o", "OUT", trunc]);
    assert.equal(p.ts.code, 1);
    assert.equal(p.ts.out, p.ref.out);
  },
});

for (const name of ["c4k", "c512", "odd4k", "mftlist"] as const) {
  Deno.test({
    name:
      `ntfsclone metadata modes of ${name} (-m, -m -s, -mst --full-logfile, to stdout) match ntfsclone`,
    ...ORACLE,
    fn() {
      using d = tempDir();
      const vol = ntfsFixture(name);
      for (const args of [["-m", "-s"], ["-mst", "--full-logfile"], ["-m"]]) {
        const p = both(d.path, [...args, "-o", "OUT", vol]);
        assertSameRun(p, `${args.join(" ")} -o file`);
        assertSameFile(p.refOut, p.tsOut, `${args.join(" ")} output`);
      }
      assertSameRun(both(d.path, ["--metadata", "--save-image", "-O", "-", vol]), "-m -s -O -");
    },
  });
}

Deno.test({
  name:
    "ntfsclone $Bitmap inconsistencies: refused, then overruled by --ignore-fs-check, as ntfsclone",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k", { fresh: true });
    toggleBitmapBit(vol, 3000); // extra
    toggleBitmapBit(vol, 3001); // extra
    toggleBitmapBit(vol, 100); // missing
    for (
      const args of [
        ["-s", "-o", "OUT"],
        ["-m", "-o", "OUT"],
        ["-s", "--rescue", "--ignore-fs-check", "-o", "OUT"],
        ["--rescue", "--ignore-fs-check", "-o", "OUT"],
        ["-m", "-s", "--ignore-fs-check", "-o", "OUT"],
        ["-m", "--ignore-fs-check", "-o", "OUT"],
      ]
    ) {
      const p = both(d.path, [...args, vol]);
      assertSameRun(p, args.join(" "));
      if (p.ref.code === 0) assertSameFile(p.refOut, p.tsOut, `${args.join(" ")} output`);
    }
  },
});

Deno.test({
  name: "ntfsclone refuses a dirty volume without --force and clones it with one -f, as ntfsclone",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k", { fresh: true });
    setDirty(vol);
    for (
      const args of [["-s", "-o", "OUT"], ["-s", "-f", "-o", "OUT"], ["-m", "-o", "OUT"], [
        "-m",
        "--force",
        "-o",
        "OUT",
      ]]
    ) {
      const p = both(d.path, [...args, vol]);
      assertSameRun(p, args.join(" "));
      assert.equal(existsSync(p.tsOut), existsSync(p.refOut), `${args.join(" ")}: output created`);
      if (p.ref.code === 0) assertSameFile(p.refOut, p.tsOut, `${args.join(" ")} output`);
    }
  },
});

Deno.test({
  name:
    "ntfsclone --new-serial/--new-half-serial: same bytes but the serial, halves kept, 0 with -m",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const serialLine = /New serial number {6}: 0x[0-9a-f]+\n/;
    for (const name of ["c4k", "odd4k"] as const) {
      const vol = ntfsFixture(name);
      const bs = Deno.readFileSync(vol).subarray(0, 512);
      const sectors = Number(new DataView(bs.buffer, bs.byteOffset).getBigUint64(0x28, true));
      const backup = sectors * 512; // inside the clone only when the device ends there
      for (const mode of ["--new-serial", "--new-half-serial"]) {
        for (const extra of [[], ["-m"], ["-s"], ["-m", "-s"]]) {
          const p = both(d.path, [mode, ...extra, "-o", "OUT", vol]);
          const random = extra.length === 0;
          assert.equal(p.ts.code, p.ref.code);
          assert.equal(p.ts.err, p.ref.err);
          if (!random) {
            assertSameRun(p, `${mode} ${extra.join(" ")}`);
            assertSameFile(p.refOut, p.tsOut, `${mode} ${extra.join(" ")}`);
            continue;
          }
          assert.equal(p.ts.out.replace(serialLine, ""), p.ref.out.replace(serialLine, ""));
          const a = Deno.readFileSync(p.refOut), b = Deno.readFileSync(p.tsOut);
          const keep = mode === "--new-half-serial" ? 4 : 0;
          for (const at of [0, backup]) {
            if (at + 512 > a.length) continue;
            // The kept low half is the original's; the rest is new on both sides.
            assert.deepEqual(
              b.subarray(at + 0x48, at + 0x48 + keep),
              bs.subarray(0x48, 0x48 + keep),
            );
            b.set(a.subarray(at + 0x48, at + 0x50), at + 0x48);
          }
          assert.ok(equalBytes(a, b), `${name} ${mode}: bytes other than the serial differ`);
          const m = p.ts.out.match(/New serial number {6}: 0x([0-9a-f]+)/)!;
          assert.equal(BigInt(`0x${m[1]}`) & 0x8000000080000000n, 0n, "bits 63 and 31 clear");
        }
      }
    }
  },
});

Deno.test({
  name: "ntfsclone geometries (2 MiB and 1 KiB clusters, 4 KiB sectors, a device past the volume)",
  ...needs("ntfsclone", "mkntfs"),
  fn() {
    using d = tempDir();
    const specs = [
      { size: 64 << 20, clusterSize: 2 << 20 },
      { size: 16 << 20, clusterSize: 4096, sectorSize: 4096 },
      { size: 24 << 20, clusterSize: 65536, sectors: 46000 },
      { size: 16 << 20, clusterSize: 1024 },
      { size: 16 << 20, clusterSize: 512, sectorSize: 4096 }, // refused by both
    ];
    for (const spec of specs) {
      let vol: string;
      try {
        vol = buildEmptyVolume(d.path, spec);
      } catch {
        vol = `${d.path}/invalid.img`;
        Deno.writeFileSync(vol, new Uint8Array(spec.size));
      }
      for (const args of [["-s"], [], ["-m", "-s"], ["-m"]]) {
        const p = both(d.path, [...args, "-o", "OUT", vol]);
        const what = `${JSON.stringify(spec)} ${args.join(" ")}`;
        assertSameRun(p, what);
        if (p.ref.code === 0) assertSameFile(p.refOut, p.tsOut, what);
      }
    }
  },
});

Deno.test("ntfsclone runs with exactly the permissions it needs and names a missing one", () => {
  using d = tempDir();
  const vol = ntfsFixture("c512");
  const out = `${d.path}/img`;
  const ok = runFsimage(["ntfsclone", "-q", "-s", "-o", out, vol], {
    flags: [`--allow-read=${vol}`, `--allow-write=${d.path}`],
  });
  assert.equal(ok.code, 0, ok.err);
  assert.ok(statSync(out).size > 0);
  // Without read permission on the output, an existing one is still never clobbered.
  const again = runFsimage(["ntfsclone", "-q", "-s", "-o", out, vol], {
    flags: [`--allow-read=${vol}`, `--allow-write=${d.path}`],
  });
  assert.equal(again.code, 1);
  assert.match(again.out, /ERROR: Output file '.*' already exists\.\nUse option --overwrite/);
  const noRead = runFsimage(["ntfsclone", "-s", "-o", `${d.path}/x`, vol], {
    flags: [`--allow-write=${d.path}`],
  });
  assert.equal(noRead.code, 1);
  assert.match(
    noRead.err,
    new RegExp(`missing permission to read ${vol}: run again with --allow-read=`),
  );
  assert.equal(existsSync(`${d.path}/x`), false);
  const noWrite = runFsimage(["ntfsclone", "-s", "-o", `${d.path}/y`, vol], {
    flags: [`--allow-read=${vol}`],
  });
  assert.equal(noWrite.code, 1);
  assert.match(noWrite.err, /missing permission to write .*--allow-write=/);
});

Deno.test({
  name: "ntfsclone to a closed pipe ends with status 141, as ntfsclone killed by SIGPIPE",
  ...needs("ntfsclone", "bash"),
  fn() {
    const vol = ntfsFixture("c4k");
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const deno = [Deno.execPath(), "run", "--no-prompt", "--allow-read", "--allow-write", MAIN]
      .map(q).join(" ");
    for (const cmd of [`ntfsclone -s -o - ${q(vol)}`, `${deno} ntfsclone -s -o - ${q(vol)}`]) {
      const r = run("bash", [
        "-c",
        `${cmd} 2>/dev/null | head -c 100 >/dev/null; echo \${PIPESTATUS[0]}`,
      ]);
      assert.equal(r.out.trim(), "141", cmd);
    }
  },
});

Deno.test({
  name: "ntfsclone -s of a volume with a malformed attribute record: same image and messages",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k", { fresh: true });
    patchAttributeByte(vol, 100, 1, 4, 3); // attribute length 3
    const p = both(d.path, ["-s", "-o", "OUT", vol]);
    assertSameRun(p, "-s");
    assertSameFile(p.refOut, p.tsOut, "image");
    assert.match(p.ts.err, /ntfs_attr_find: Corrupt inode \(100\): Input\/output error/);
  },
});

Deno.test({
  name: "ntfsclone with bad clusters in $BadClus: not copied, warned about, counted as ntfsclone",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k", { fresh: true });
    markBadClusters(vol, 3500, 5);
    for (const args of [["-s"], [], ["-m", "-s"], ["-m"]]) {
      const p = both(d.path, [...args, "-o", "OUT", vol]);
      assertSameRun(p, args.join(" "));
      assertSameFile(p.refOut, p.tsOut, args.join(" "));
      assert.match(p.ts.out, /WARNING: The disk has 5 or more bad sectors \(hardware faults\)\.\n/);
    }
  },
});

Deno.test({
  name:
    "ntfsclone with clusters referenced twice: refused, or reported twice under --ignore-fs-check",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const vol = ntfsFixture("c4k", { fresh: true });
    // $BadClus:$Bad claims two clusters of a user file: the file references them again.
    let lcn = -1;
    for (const ino of NtfsVolume.open(new MemorySource(Deno.readFileSync(vol))).walk()) {
      if (ino.inode < 64 || lcn >= 0) continue;
      for (const { attr } of ino.attributes) {
        const r = attr.runs.find((x) => x.lcn >= 0 && x.length >= 3);
        if (attr.type === AttrType.DATA && r) lcn = r.lcn;
      }
    }
    markBadClusters(vol, lcn, 2, { setBitmap: false });
    for (
      const args of [
        ["-s", "-o", "OUT"],
        ["-s", "--rescue", "--ignore-fs-check", "-o", "OUT"],
        ["--rescue", "--ignore-fs-check", "-o", "-"],
        ["-m", "-s", "--ignore-fs-check", "-o", "OUT"],
        ["-m", "--ignore-fs-check", "-o", "OUT"],
      ]
    ) {
      const p = both(d.path, [...args, vol]);
      assertSameRun(p, args.join(" "));
      if (p.ref.code === 0 && existsSync(p.refOut)) {
        assertSameFile(p.refOut, p.tsOut, args.join(" "));
      }
    }
  },
});

Deno.test({
  name: "ntfsclone -s of seeded hostile mutations: same status and image as ntfsclone",
  ...ORACLE,
  fn() {
    using d = tempDir();
    const base = Deno.readFileSync(ntfsFixture("c4k"));
    let seed = 20261123;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    // The boot sector, the first MFT records, the rest of the MFT, $MFTMirr.
    const zones = [[0, 512], [0x4000, 0x10000], [0x14000, 0x50000], [2047 * 4096, 4096]];
    let cloned = 0, refused = 0;
    for (let t = 0; t < 16; t++) {
      const img = base.slice();
      for (let k = 0, n = 1 + rnd(30); k < n; k++) {
        const [from, len] = zones[rnd(zones.length)]!;
        img[from! + rnd(len!)] = rnd(256);
      }
      const vol = `${d.path}/m${t}.img`;
      Deno.writeFileSync(vol, img);
      const p = both(d.path, ["-q", "-s", "-O", "OUT", vol]);
      assert.equal(p.ts.code, p.ref.code, `mutation ${t}: ${p.ts.out}${p.ts.err}`);
      assert.doesNotMatch(p.ts.err, /Error|fsimage:/, `mutation ${t}`);
      if (p.ref.code === 0) assertSameFile(p.refOut, p.tsOut, `mutation ${t}`);
      if (p.ref.code === 0) cloned++;
      else refused++;
      Deno.removeSync(vol);
    }
    assert.ok(cloned >= 3 && refused >= 3, `cloned ${cloned}, refused ${refused}`);
  },
});
