/**
 * `fsimage e2image` against the real e2image 1.47.0: command-line errors, raw images, normal
 * images, -I, permissions.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import * as fs from "node:fs";
import { BufferWriter } from "../../lib/cli/context.ts";
import { runE2image } from "../../lib/cli/e2image.ts";
import { Buffer } from "node:buffer";
import { MAIN, needs, run, runFsimage, tempDir } from "../_helpers.ts";
import { extFixture, extFixtureNames } from "../ext/_fixtures.ts";

/** Runs our e2image in-process; returns what the real tool's run() returns. */
export function ours(args: string[], programName = "e2image"): {
  code: number;
  out: string;
  err: string;
} {
  const stdout = new BufferWriter();
  const stderr = new BufferWriter();
  const code = runE2image(args, { programName, stdout, stderr, debug: false }, {
    dropPermissions: false,
    clock: () => 0,
    hostname: () => "testhost",
    mountTable: () => [],
  });
  return { code, out: stdout.text, err: stderr.text };
}

function real(args: string[], programName = "e2image"): { code: number; out: string; err: string } {
  const r = run("bash", ["-c", `exec -a '${programName}' e2image "$@"`, "bash", ...args]);
  return { code: r.code, out: r.out, err: r.err };
}

function makeFs(dir: string, name: string, args: string[], size: string): string {
  const path = `${dir}/${name}`;
  run("mkfs.ext4", [
    "-q",
    "-F",
    "-U",
    "11111111-2222-3333-4444-555555555555",
    "-E",
    "hash_seed=11111111-2222-3333-4444-555555555555",
    ...args,
    path,
    size,
  ], {
    env: { E2FSPROGS_FAKE_TIME: "1700000000" },
  });
  return path;
}

Deno.test(
  "e2image: command-line errors match the real tool (stdout, stderr, status)",
  needs("e2image", "mkfs.ext4"),
  () => {
    using tmp = tempDir("h2-cli-");
    const fsImg = makeFs(tmp.path, "fs.img", ["-b", "1024"], "8M");
    const o = `${tmp.path}/o`;
    const cases: string[][] = [
      [],
      ["-rQ", fsImg, o],
      ["-rr", fsImg, o],
      ["-a", fsImg, o],
      ["-a", fsImg],
      ["-b", "8193", fsImg, o],
      ["-b", "5", "-o", "1", fsImg],
      ["-Qo", "5", fsImg, o],
      ["-Q", "-o", "3", fsImg],
      ["-r", fsImg],
      ["-ro", "5", fsImg],
      ["-rO", "0x1", fsImg],
      ["-ro", "0", fsImg],
      ["-rI", fsImg, o],
      ["-I", "-r", "a", "b"],
      ["-x", fsImg, o],
      ["-r", fsImg, o, "-o"],
      ["--foo", "a", "b"],
      ["-o", "7", fsImg, o],
      ["-r", `${tmp.path}/missing`, o],
      ["-r", fsImg, o, "extra"],
    ];
    for (const args of cases) {
      for (const argv0 of ["e2image", "/usr/sbin/e2image"]) {
        try {
          fs.rmSync(o);
        } catch { /* absent */ }
        const want = real(args, argv0);
        const wantExists = fs.existsSync(o);
        try {
          fs.rmSync(o);
        } catch { /* absent */ }
        const got = ours(args, argv0);
        assertEquals(got, want, `e2image ${args.join(" ")} (argv0 ${argv0})`);
        assertEquals(fs.existsSync(o), wantExists, `output exists after ${args.join(" ")}`);
      }
    }
  },
);

const FIXTURES = extFixtureNames;

function same(a: string, b: string): boolean {
  return run("cmp", ["-s", a, b]).code === 0;
}

Deno.test(
  "e2image -r/-ra/-rs to a new file are byte-identical to the real tool",
  needs("e2image", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-raw-");
    for (const name of FIXTURES) {
      const img = extFixture(name);
      for (const mode of ["-r", "-ra", "-rs"]) {
        const want = `${tmp.path}/${name}${mode}.real`;
        const got = `${tmp.path}/${name}${mode}.ours`;
        const r = real([mode, img, want]);
        const o = ours([mode, img, got]);
        assertEquals(o, r, `${name} ${mode}`);
        assertEquals(same(want, got), true, `${name} ${mode}: bytes differ`);
        fs.rmSync(want);
        fs.rmSync(got);
      }
    }
  },
);

Deno.test(
  "e2image -r onto an existing 0xFF file, with -O and -o, -c and -n, match the real tool",
  needs("e2image", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-over-");
    const img = extFixture("ext4-1k");
    const size = fs.statSync(img).size;
    const ff = new Uint8Array(size + (1 << 20)).fill(0xff);
    const a = `${tmp.path}/a`, b = `${tmp.path}/b`;
    for (const mode of ["-r", "-ra"]) {
      fs.writeFileSync(a, ff);
      fs.writeFileSync(b, ff);
      assertEquals(ours([mode, img, b]), real([mode, img, a]));
      assertEquals(same(a, b), true, `overlay ${mode}`);
      assertEquals(fs.statSync(b).size, fs.statSync(a).size);
    }
    // -c onto an identical image: every selected block is already there.
    const rc = real(["-rc", img, a]);
    const oc = ours(["-rc", img, b]);
    assertEquals(oc, rc);
    assertEquals(same(a, b), true);
    // -O then -o back.
    fs.rmSync(a);
    fs.rmSync(b);
    assertEquals(ours(["-ra", "-O", "1048576", img, b]), real(["-ra", "-O", "1048576", img, a]));
    assertEquals(same(a, b), true, "-O");
    const a2 = `${tmp.path}/a2`, b2 = `${tmp.path}/b2`;
    assertEquals(ours(["-r", "-o", "0x100000", a, b2]), real(["-r", "-o", "0x100000", a, a2]));
    assertEquals(same(a2, b2), true, "-o");
    // -n to a new file: the same lines, and the same full-size hole file.
    fs.rmSync(a2);
    fs.rmSync(b2);
    const rn = real(["-rn", img, a2]);
    const on = ours(["-rn", img, b2]);
    assertEquals(on, rn);
    assertEquals(fs.statSync(b2).size, fs.statSync(a2).size);
    // -p: same text with a clock that does not move.
    fs.rmSync(a2);
    fs.rmSync(b2);
    assertEquals(ours(["-rp", img, b2]), real(["-rp", img, a2]));
  },
);

Deno.test(
  "e2image -c on a new file does not hang and copies everything",
  needs("mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-c-");
    const img = extFixture("ext4-1k");
    const o = ours(["-rc", img, `${tmp.path}/new`]);
    assertEquals(o.code, 0);
    assertEquals(o.out, "0 blocks already contained the data to be copied\n");
    const again = ours(["-rc", img, `${tmp.path}/new`]);
    assertEquals(/^[1-9]\d* blocks already/.test(again.out), true);
  },
);

Deno.test(
  "e2image raw to stdout (pipe and file) equals the real tool",
  needs("e2image", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-stdout-");
    const img = extFixture("ext4-default");
    for (const mode of ["-r", "-rs"]) {
      const want = run("bash", ["-c", `e2image ${mode} '${img}' - 2>/dev/null | sha256sum`]).out;
      const got = run("bash", [
        "-c",
        `'${Deno.execPath()}' run --no-prompt --allow-read='${img}' '${MAIN}' e2image ${mode} '${img}' - 2>/dev/null | sha256sum`,
      ]).out;
      assertEquals(got, want, `pipe ${mode}`);
    }
    const f1 = `${tmp.path}/s1`, f2 = `${tmp.path}/s2`;
    run("bash", ["-c", `e2image -r '${img}' - > '${f1}'`]);
    run("bash", [
      "-c",
      `'${Deno.execPath()}' run --no-prompt --allow-read='${img}' '${MAIN}' e2image -r '${img}' - > '${f2}'`,
    ]);
    assertEquals(same(f1, f2), true, "stdout to a file");
  },
);

Deno.test(
  "e2image moves a filesystem left and right inside a file, keeping the sentinels",
  needs("e2fsck", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-move-");
    const img = fs.readFileSync(extFixture("ext4-1k"));
    const mib = 1 << 20;
    for (const [src, dst] of [[mib, 0], [mib, 3 * mib], [0, 512]] as const) {
      const f = `${tmp.path}/m`;
      const buf = new Uint8Array(Math.max(src, dst) + img.length + 2 * mib).fill(0xbb);
      buf.fill(0xaa, 0, src);
      buf.set(img, src);
      fs.writeFileSync(f, buf);
      const r = ours(["-ra", "-o", String(src), "-O", String(dst), f]);
      assertEquals(r.code, 0, r.err);
      const after = fs.readFileSync(f);
      assertEquals(after.length, buf.length, "a move never shrinks the file");
      assertEquals(after[after.length - 1], 0xbb, "the data after the filesystem is kept");
      const fsck = run("e2fsck", ["-fn", `${f}?offset=${dst}`]);
      assertEquals(fsck.code, 0, `e2fsck after moving ${src} -> ${dst}: ${fsck.out}`);
    }
  },
);

Deno.test(
  "e2image normal image reads like the real tool's in dumpe2fs -i and debugfs -i",
  needs("e2image", "dumpe2fs", "debugfs", "mkfs.ext4"),
  () => {
    using tmp = tempDir("h2-normal-");
    for (const name of extFixtureNames) {
      const img = extFixture(name);
      const a = `${tmp.path}/${name}.real`, b = `${tmp.path}/${name}.ours`;
      assertEquals(ours([img, b]), real([img, a]));
      const ra = fs.readFileSync(a), rb = fs.readFileSync(b);
      assertEquals(rb.length, ra.length);
      // Bytes equal except the host fields of the header: hostname, image dev/ino/time.
      const mask = (x: Uint8Array) => {
        const c = x.slice();
        c.fill(0, 20, 84);
        c.fill(0, 240, 256);
        return c;
      };
      assertEquals(Buffer.compare(mask(ra), mask(rb)), 0, `${name}: normal image bytes`);
      const noTime = (s: string) =>
        s.split("\n").filter((l) => !/time|Lifetime/i.test(l)).join("\n");
      assertEquals(noTime(run("dumpe2fs", ["-i", b]).out), noTime(run("dumpe2fs", ["-i", a]).out));
      for (
        const req of ["stats", "stat <2>", "stat <11>", "testb 1 200", "testi <12>", "ffb 5", "ffi"]
      ) {
        assertEquals(
          noTime(run("debugfs", ["-i", "-R", req, b]).out),
          noTime(run("debugfs", ["-i", "-R", req, a]).out),
          `${name}: debugfs ${req}`,
        );
      }
    }
  },
);

Deno.test(
  "e2image -I restores zeroed inode tables so that e2fsck passes",
  needs("e2image", "e2fsck", "dumpe2fs", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-install-");
    for (const name of extFixtureNames) {
      const img = extFixture(name);
      const nimg = `${tmp.path}/${name}.e2i`;
      assertEquals(ours([img, nimg]).code, 0);
      const dev = `${tmp.path}/${name}.dev`;
      const bytes = fs.readFileSync(img);
      const info = run("dumpe2fs", [img]).out;
      const it = Number(/Inode table at (\d+)-/.exec(info)![1]);
      const bs = Number(/Block size:\s+(\d+)/.exec(info)![1]);
      bytes.fill(0, it * bs, (it + 8) * bs);
      fs.writeFileSync(dev, bytes);
      const cleanBefore = run("e2fsck", ["-fn", img]).code === 0;
      if (cleanBefore) {
        assertEquals(run("e2fsck", ["-fn", dev]).code !== 0, true, "the damage is seen");
      }
      const r = ours(["-I", dev, nimg]);
      assertEquals(r, { code: 0, out: "", err: "e2image 1.47.0 (5-Feb-2023)\n" });
      if (cleanBefore) {
        assertEquals(run("e2fsck", ["-fn", dev]).code, 0, `${name}: e2fsck after -I`);
      }
      const fixed = fs.readFileSync(dev);
      // The real tool's -I on the same damage gives the same bytes.
      const dev2 = `${tmp.path}/${name}.dev2`;
      fs.writeFileSync(dev2, bytes);
      assertEquals(real(["-I", dev2, nimg]).code, 0);
      // Only s_wtime, s_kbytes_written and the superblock checksum may differ from the original
      // and from the real tool's result.
      const mask = (b: Uint8Array) => {
        const c = Buffer.from(b);
        c.fill(0, 1024 + 0x30, 1024 + 0x34); // s_wtime
        c.fill(0, 1024 + 0x178, 1024 + 0x180); // s_kbytes_written
        c.fill(0, 1024 + 0x3fc, 1024 + 0x400); // s_checksum
        return c;
      };
      const want = mask(fixed);
      assertEquals(mask(fs.readFileSync(img)).equals(want), true, `${name}: vs the original`);
      assertEquals(mask(fs.readFileSync(dev2)).equals(want), true, `${name}: vs e2image -I`);
    }
  },
);

Deno.test(
  "e2image under narrow permissions: scoped flags work, a missing one is named",
  needs("mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-perm-");
    const img = extFixture("ext4-1k");
    const out = `${tmp.path}/o.raw`;
    const ok = runFsimage(["e2image", "-r", img, out], {
      flags: [`--allow-read=${img}`, `--allow-write=${out}`],
    });
    assertEquals(ok.code, 0, ok.err);
    const bad = runFsimage(["e2image", "-r", img, `${tmp.path}/p.raw`], {
      flags: [`--allow-read=${img}`],
    });
    assertEquals(bad.code, 1);
    const lines = bad.err.trimEnd().split("\n");
    assertEquals(lines.length, 2);
    assertEquals(
      lines[1],
      `e2image: missing permission to write ${tmp.path}/p.raw: run again with --allow-write=${tmp.path}/p.raw`,
    );
    assertEquals(fs.existsSync(`${tmp.path}/p.raw`), false);
  },
);

Deno.test(
  "e2image -Q: qemu-img check clean, and both tools convert it back to the -r image",
  needs("e2image", "qemu-img", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-qcow-");
    for (const name of ["ext4-1k", "ext4-default", "ext4-bigalloc"]) {
      const img = extFixture(name);
      for (const [q, r] of [["-Q", "-r"], ["-Qa", "-ra"], ["-Qs", "-rs"]]) {
        const raw = `${tmp.path}/raw`, qo = `${tmp.path}/o.qcow2`, qr = `${tmp.path}/r.qcow2`;
        for (const f of [raw, qo, qr]) fs.rmSync(f, { force: true });
        assertEquals(real([r!, img, raw]).code, 0);
        assertEquals(ours([q!, img, qo]).code, 0);
        assertEquals(run("qemu-img", ["check", qo]).code, 0, `${name} ${q}: qemu-img check`);
        assertEquals(run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", qo, raw]).code, 0);
        // The real e2image reads ours, we read the real one's.
        const back1 = `${tmp.path}/b1`, back2 = `${tmp.path}/b2`;
        for (const f of [back1, back2]) fs.rmSync(f, { force: true });
        assertEquals(real(["-r", qo, back1]).code, 0);
        assertEquals(real([q!, img, qr]).code, 0);
        assertEquals(ours(["-r", qr, back2]), {
          code: 0,
          out: "",
          err: "e2image 1.47.0 (5-Feb-2023)\n",
        });
        assertEquals(same(raw, back1), true, `${name} ${q}: e2image -r of ours`);
        assertEquals(same(raw, back2), true, `${name} ${q}: ours -r of e2image's`);
      }
    }
  },
);

Deno.test(
  "e2image: open and scan errors match the real tool",
  needs("e2image", "mkfs.ext4", "debugfs", "mkswap"),
  () => {
    using tmp = tempDir("h2-err-");
    const img = extFixture("ext4-1k");
    const swap = `${tmp.path}/swap.img`;
    fs.writeFileSync(swap, new Uint8Array(1 << 20));
    run("mkswap", ["-L", "lbl", swap]);
    const zero = `${tmp.path}/zero.img`;
    fs.writeFileSync(zero, new Uint8Array(1 << 20));
    const badIt = `${tmp.path}/badit.img`;
    fs.copyFileSync(img, badIt);
    run("debugfs", ["-w", "-R", "set_bg 1 inode_table 99999999", badIt]);
    const q = `${tmp.path}/q.qcow2`;
    run("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-o",
      "compat=0.10,cluster_size=4096",
      q,
      "4M",
    ]);
    const qbad = `${tmp.path}/qbad.qcow2`;
    const qb = fs.readFileSync(q);
    qb.set([0, 0, 0, 0, 0, 0, 0x10, 0x01], 40); // l1_table_offset not cluster-aligned
    fs.writeFileSync(qbad, qb);
    const qenc = `${tmp.path}/qenc.qcow2`;
    const qe = fs.readFileSync(q);
    qe.set([0, 0, 0, 1], 32); // crypt_method = AES
    fs.writeFileSync(qenc, qe);
    const o = `${tmp.path}/o`;
    const cases: string[][] = [
      ["-rb", "8193", img, o],
      ["-rb", "8193", "-B", "1024", img, o],
      ["-rb", "8193", "-B", "4096", img, o],
      ["-B", "4096", img, o],
      ["-Qc", img, o],
      ["-Qp", img, o],
      ["-rc", img, "-"],
      ["-Q", img, "-"],
      ["-p", img, o],
      ["-r", img, tmp.path],
      ["-r", zero, o],
      ["-r", swap, o],
      ["-r", badIt, o],
      ["-r", qbad, o],
      ["-r", qenc, o],
      ["-rO", "5", img, "-"],
    ];
    for (const args of cases) {
      fs.rmSync(o, { force: true });
      const want = real(args);
      const wantBytes = fs.existsSync(o) ? fs.readFileSync(o) : undefined;
      fs.rmSync(o, { force: true });
      const got = ours(args);
      assertEquals(got, want, `e2image ${args.join(" ")}`);
      if (wantBytes && args[0] !== "-r") assertEquals(fs.readFileSync(o), wantBytes);
    }
    // A normal image whose inode table is corrupt: same message; our partial output is emptied.
    fs.rmSync(o, { force: true });
    const want = real([badIt, o]);
    fs.rmSync(o, { force: true });
    assertEquals(ours([badIt, o]), want);
    assertEquals(fs.statSync(o).size, 0);
  },
);

Deno.test(
  "e2image -rp rewrites the count once per second and estimates after five",
  needs("mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-progress-");
    const img = extFixture("ext4-default");
    let t = 1000;
    const stdout = new BufferWriter();
    const stderr = new BufferWriter();
    const code = runE2image(["-rap", img, `${tmp.path}/o`], {
      programName: "e2image",
      stdout,
      stderr,
      debug: false,
    }, { dropPermissions: false, clock: () => (t += 3), mountTable: () => [] });
    assertEquals(code, 0);
    const lines = stderr.text.split("\n");
    assertEquals(lines[1], "Scanning inodes...");
    const m = /^Copying 0 \/ (\d+) blocks \(0%\)/.exec(lines[2]!);
    assertEquals(m !== null, true, lines[2]);
    assertEquals(
      /\d+ \/ \d+ blocks \(\d+%\) 00:00:\d\d remaining at \d+\.\d\d MB\/s/.test(lines[2]!),
      true,
    );
    assertEquals(
      /\rCopied (\d+) \/ \1 blocks \(100%\) in 00:00:\d\d at \d+\.\d\d MB\/s {7}$/.test(lines[2]!),
      true,
    );
  },
);

function losetup(file: string): string {
  return run("losetup", ["-f", "--show", file]).out.trim();
}

Deno.test(
  "e2image raw output to a block device, and a loop device on stdin with no permission flag",
  needs("root", "losetup", "e2image", "e2fsck", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-dev-");
    const img = extFixture("ext4-1k");
    const size = fs.statSync(img).size;
    const d1 = `${tmp.path}/d1`, d2 = `${tmp.path}/d2`;
    fs.writeFileSync(d1, new Uint8Array(size).fill(0xff));
    fs.writeFileSync(d2, new Uint8Array(size).fill(0xff));
    const l1 = losetup(d1), l2 = losetup(d2), l3 = losetup(img);
    try {
      assertEquals(real(["-r", img, l1]).code, 0);
      const o = runFsimage(["e2image", "-r", img, l2], { flags: ["-A"] });
      assertEquals(o.code, 0, o.err);
      // A loop device redirected to stdin, the image to stdout: no permission at all.
      const piped = runFsimage(["e2image", "-r", "-", "-"], { flags: [], stdin: l3 });
      assertEquals(piped.code, 0, piped.err);
      const want = run("e2image", ["-r", img, "-"]).stdout;
      assertEquals(Buffer.compare(piped.stdout, want), 0, "stdin loop device to stdout");
      assertEquals(
        piped.err,
        "e2image 1.47.0 (5-Feb-2023)\ne2image: cannot read the mount table without -A; skipped the check whether standard input is mounted\n",
      );
    } finally {
      run("losetup", ["-d", l1, l2, l3]);
    }
    const a = fs.readFileSync(d1), b = fs.readFileSync(d2);
    // e2image zeroes the last byte of the device area (its failed-ftruncate fallback); we do not.
    assertEquals(a[a.length - 1], 0);
    assertEquals(b[b.length - 1], 0xff);
    assertEquals(Buffer.compare(a.subarray(0, -1), b.subarray(0, -1)), 0, "device contents");
    assertEquals(run("e2fsck", ["-fn", d2]).code, 0);
  },
);

Deno.test(
  "e2image refuses a R/W mounted filesystem (file or device) unless -f",
  needs("root", "losetup", "mount", "e2image", "mkfs.ext4", "debugfs"),
  () => {
    using tmp = tempDir("h2-mount-");
    const img = `${tmp.path}/m.img`;
    fs.copyFileSync(extFixture("ext4-1k"), img);
    const mp = `${tmp.path}/mp`;
    fs.mkdirSync(mp);
    const loop = losetup(img);
    if (run("mount", [loop, mp]).code !== 0) {
      run("losetup", ["-d", loop]);
      console.error("skipping: cannot mount ext4 here");
      return;
    }
    try {
      for (const src of [img, loop]) {
        const want = real(["-r", src, `${tmp.path}/o`]);
        assertEquals(want.code, 1);
        const got = runFsimage(["e2image", "-r", src, `${tmp.path}/o`], { flags: ["-A"] });
        assertEquals({ code: got.code, out: got.out, err: got.err }, want, `mounted ${src}`);
        const forced = runFsimage(["e2image", "-rf", src, `${tmp.path}/o`], { flags: ["-A"] });
        assertEquals(forced.code, 0, forced.err);
      }
    } finally {
      run("umount", [mp]);
      run("losetup", ["-d", loop]);
    }
  },
);
