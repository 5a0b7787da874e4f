/**
 * `deno task demo`: images the bundled sample filesystems (tests/fixtures/demo) into each
 * output format with least-privilege runs of fsimage, checks every result (with the real tools
 * when they are installed, and with fsimage's own readers otherwise), and prints what it did.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { ExtVolume } from "../lib/ext/mod.ts";
import { MemorySource } from "../lib/io/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${ROOT}/main.ts`;
const dec = new TextDecoder();

function sh(
  cmd: string,
  args: string[],
  stdin?: string,
): { code: number; out: string; err: string; bytes: Uint8Array } {
  if (stdin !== undefined) {
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    return sh("sh", ["-c", `exec ${[cmd, ...args].map(q).join(" ")} < ${q(stdin)}`]);
  }
  const o = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .outputSync();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr), bytes: o.stdout };
}

function have(tool: string): boolean {
  return sh("sh", ["-c", `command -v ${tool}`]).code === 0;
}

function sha(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

/** Runs fsimage with exactly the permissions a user would give. */
function fsimage(args: string[], read: string[], write: string[], stdin?: string) {
  const flags = ["--no-prompt"];
  if (read.length) flags.push(`--allow-read=${read.join(",")}`);
  if (write.length) flags.push(`--allow-write=${write.join(",")}`);
  return sh(Deno.execPath(), ["run", ...flags, MAIN, ...args], stdin);
}

interface Row {
  step: string;
  command: string;
  result: string;
  ok: boolean;
}
const rows: Row[] = [];
function record(step: string, command: string, ok: boolean, result: string): void {
  rows.push({ step, command, ok, result });
  console.log(`${ok ? "ok  " : "FAIL"} ${step}: ${result}`);
}

const work = Deno.makeTempDirSync({ prefix: "fsimage-demo-" });
try {
  // 1. Unpack and verify the samples.
  const sums = Object.fromEntries(
    Deno.readTextFileSync(`${ROOT}/tests/fixtures/demo/SHA256SUMS`).trim().split("\n").map((l) => {
      const [h, n] = l.split(/\s+/);
      return [n, h];
    }),
  );
  for (const name of ["ext4.img", "ntfs.img"]) {
    const img = new Uint8Array(
      gunzipSync(Deno.readFileSync(`${ROOT}/tests/fixtures/demo/${name}.gz`)),
    );
    Deno.writeFileSync(`${work}/${name}`, img);
    const ok = sha(`${work}/${name}`) === sums[name];
    record(
      `sample ${name}`,
      `gunzip tests/fixtures/demo/${name}.gz`,
      ok,
      `${img.length} bytes, sha256 ${ok ? "matches" : "MISMATCH"}`,
    );
  }
  const ext = `${work}/ext4.img`, ntfs = `${work}/ntfs.img`;

  // 2. ext4: e2image in every format.
  const oracle = (t: string) => have(t);
  {
    const raw = `${work}/ext4.raw`;
    const r = fsimage(["e2image", "-r", ext, raw], [ext], [raw]);
    let ok = r.code === 0, note = "";
    if (ok && oracle("e2image")) {
      sh("e2image", ["-r", ext, `${work}/ref.raw`]);
      ok = sha(raw) === sha(`${work}/ref.raw`);
      note = ok ? "byte-identical to the real e2image -r" : "DIFFERS from the real e2image -r";
    }
    if (ok && oracle("e2fsck")) {
      const f = sh("e2fsck", ["-fn", raw]);
      ok = f.code === 0;
      note += ok
        ? ", e2fsck -fn clean"
        : `, e2fsck -fn failed: ${f.out.split("\n").slice(-3).join(" ")}`;
    }
    const alloc = (Deno.statSync(raw).blocks ?? 0) * 512;
    record(
      "ext4 raw metadata image",
      "fsimage e2image -r ext4.img ext4.raw",
      ok,
      `${note || r.err.trim()}; ${alloc} bytes allocated`,
    );

    const all = `${work}/ext4-all.raw`;
    const a = fsimage(["e2image", "-ra", ext, all], [ext], [all]);
    const allOk = a.code === 0 && sha(all) === sha(ext);
    record(
      "ext4 raw image with data",
      "fsimage e2image -ra ext4.img ext4-all.raw",
      allOk,
      allOk ? "equal to the filesystem, byte for byte" : a.err.trim(),
    );

    const q = `${work}/ext4.qcow2`;
    const qr = fsimage(["e2image", "-Q", ext, q], [ext], [q]);
    let qOk = qr.code === 0, qNote = `${Deno.statSync(q).size} bytes`;
    if (qOk && oracle("qemu-img")) {
      const c = sh("qemu-img", ["check", q]);
      const cmp = sh("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", q, raw]);
      qOk = c.code === 0 && cmp.code === 0;
      qNote += `, qemu-img check ${
        c.code === 0 ? "clean" : "FAILED"
      }, qemu-img compare with the raw image: ${cmp.out.trim()}`;
    }
    record("ext4 QCOW2 image", "fsimage e2image -Q ext4.img ext4.qcow2", qOk, qNote);

    const back = `${work}/back.raw`;
    const b = fsimage(["e2image", "-r", q, back], [q], [back]);
    const backOk = b.code === 0 && sha(back) === sha(raw);
    record(
      "QCOW2 back to raw",
      "fsimage e2image -r ext4.qcow2 back.raw",
      backOk,
      backOk ? "identical to the raw image" : b.err.trim(),
    );

    const norm = `${work}/ext4.e2i`;
    const n = fsimage(["e2image", ext, norm], [ext], [norm]);
    let nOk = n.code === 0, nNote = `${Deno.statSync(norm).size} bytes`;
    if (nOk && oracle("dumpe2fs")) {
      const d1 = sh("dumpe2fs", ["-i", norm]), d2 = sh("dumpe2fs", [ext]);
      const strip = (t: string) =>
        t.split("\n").filter((l) => !/^Journal|time|Lifetime|^$/i.test(l)).join("\n");
      nOk = d1.code === 0 && strip(d1.out).split("\n").length > 20;
      nNote += nOk ? ", dumpe2fs -i reads it" : ", dumpe2fs -i FAILED";
      void d2;
    }
    record("ext4 normal image", "fsimage e2image ext4.img ext4.e2i", nOk, nNote);

    // Damage the inode table of a copy, then install the metadata back with -I.
    const dmg = `${work}/damaged.img`;
    Deno.copyFileSync(ext, dmg);
    const vol = ExtVolume.open(new MemorySource(Deno.readFileSync(dmg)));
    const itable = vol.groups[0]!.inodeTable * vol.blockSize;
    const f = Deno.openSync(dmg, { write: true });
    f.seekSync(itable, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array(vol.blockSize * 4));
    f.close();
    const broken = oracle("e2fsck") ? sh("e2fsck", ["-fn", dmg]).code !== 0 : true;
    const i = fsimage(["e2image", "-I", dmg, norm], [norm, dmg], [dmg]);
    const fixed = oracle("e2fsck") ? sh("e2fsck", ["-fn", dmg]).code === 0 : sha(dmg) === sha(ext);
    record(
      "install metadata back",
      "fsimage e2image -I damaged.img ext4.e2i",
      i.code === 0 && broken && fixed,
      `zeroed 4 inode-table blocks${broken ? " (e2fsck failed)" : ""}; after -I e2fsck -fn ${
        fixed ? "is clean" : "STILL FAILS"
      }`,
    );
  }

  // 3. Privacy: what a metadata image leaks, and a scrubbed one that leaks nothing.
  {
    const raw = `${work}/ext4.raw`;
    const a = fsimage(["audit", raw], [raw], []);
    const kinds = a.out.split("\n").filter((l) => /^LEAK /.test(l)).length;
    record(
      "privacy audit",
      "fsimage audit ext4.raw",
      a.code === 1 && kinds > 0,
      `the plain -r image leaks ${kinds} kinds of data (names, symlink targets, label, …)`,
    );
    const scrubbed = `${work}/scrubbed.raw`;
    const s = fsimage(["e2image", "-r", "--scrub", ext, scrubbed], [ext], [scrubbed]);
    const again = fsimage(["audit", scrubbed], [scrubbed], []);
    const fsck = oracle("e2fsck") ? sh("e2fsck", ["-fn", scrubbed]).code === 0 : true;
    record(
      "scrubbed metadata image",
      "fsimage e2image -r --scrub ext4.img scrubbed.raw",
      s.code === 0 && again.code === 0 && fsck,
      `audit ${again.code === 0 ? "clean" : "STILL FINDS LEAKS"}${
        oracle("e2fsck") ? `, e2fsck -fn ${fsck ? "clean" : "FAILED"}` : ""
      }`,
    );
  }

  // 4. NTFS: ntfsclone clone, save, restore (also from stdin), metadata.
  {
    const img = `${work}/ntfs.nimg`;
    const s = fsimage(["ntfsclone", "-q", "--save-image", "-o", img, ntfs], [ntfs], [img]);
    let ok = s.code === 0, note = `${Deno.statSync(img).size} bytes`;
    if (ok && oracle("ntfsclone")) {
      sh("ntfsclone", ["-q", "--save-image", "-o", `${work}/ref.nimg`, ntfs]);
      ok = sha(img) === sha(`${work}/ref.nimg`);
      note += ok ? ", byte-identical to the real ntfsclone" : ", DIFFERS from the real ntfsclone";
    }
    record("NTFS special image", "fsimage ntfsclone --save-image -o ntfs.nimg ntfs.img", ok, note);

    const rest = `${work}/restored.img`;
    const r = fsimage(["ntfsclone", "-q", "--restore-image", "-O", rest, "-"], [], [rest], img);
    const rOk = r.code === 0 && sha(rest) === sha(ntfs);
    record(
      "restore from stdin",
      "fsimage ntfsclone -r -O restored.img - < ntfs.nimg",
      rOk,
      rOk ? "identical to the volume" : r.err.trim(),
    );

    const clone = `${work}/clone.img`;
    const c = fsimage(["ntfsclone", "-q", "-O", clone, ntfs], [ntfs], [clone]);
    let cOk = c.code === 0, cNote = "";
    if (cOk && oracle("ntfsfix")) {
      const fx = sh("ntfsfix", ["-n", clone]);
      cOk = fx.code === 0;
      cNote = cOk ? "ntfsfix -n clean" : "ntfsfix -n FAILED";
    }
    const alloc = (Deno.statSync(clone).blocks ?? 0) * 512;
    record(
      "NTFS sparse clone",
      "fsimage ntfsclone -O clone.img ntfs.img",
      cOk,
      `${cNote}; ${alloc} of ${Deno.statSync(clone).size} bytes allocated`,
    );

    const meta = `${work}/meta.img`;
    const m = fsimage(["ntfsclone", "-q", "--metadata", "-O", meta, ntfs], [ntfs], [meta]);
    let mOk = m.code === 0, mNote = "";
    if (mOk && oracle("ntfsclone")) {
      sh("ntfsclone", ["-q", "--metadata", "-O", `${work}/ref-meta.img`, ntfs]);
      mOk = sha(meta) === sha(`${work}/ref-meta.img`);
      mNote = mOk
        ? "byte-identical to the real ntfsclone --metadata"
        : "DIFFERS from the real ntfsclone --metadata";
    }
    record(
      "NTFS metadata-only clone",
      "fsimage ntfsclone --metadata -O meta.img ntfs.img",
      mOk,
      mNote || m.err.trim(),
    );
  }

  // 5. fsimage's own sparse copy, through a pipe with no permission at all.
  {
    const p = fsimage(["copy", "-q", "-", "-"], [], [], ext);
    const pipeOk = p.code === 0 && createHash("sha256").update(p.bytes).digest("hex") === sha(ext);
    record(
      "sparse copy through a pipe",
      "fsimage copy - - < ext4.img",
      pipeOk,
      pipeOk ? "identical, no permission flag" : p.err.trim(),
    );
  }
} finally {
  Deno.removeSync(work, { recursive: true });
}

console.log("");
console.log("| step | command | result |");
console.log("| --- | --- | --- |");
for (const r of rows) {
  console.log(
    `| ${r.ok ? "" : "FAILED: "}${r.step} | \`${
      r.command.replaceAll("|", "\\|")
    }\` | ${r.result} |`,
  );
}
const failed = rows.filter((r) => !r.ok).length;
console.log(`\n${rows.length - failed} of ${rows.length} steps passed`);
if (failed) Deno.exit(1);
