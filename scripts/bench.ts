/**
 * `deno task bench`: builds its inputs (a multi-GiB ext4 and NTFS image full of real data, a
 * metadata-heavy ext4 with ~200,000 inodes, a sparse multi-TiB ext4), then runs every job with
 * fsimage, with the native tool and, for data-copying jobs, with `qemu-img convert` on the same
 * image (the copy ceiling), alternately in the same run, several times. It prints a markdown
 * table (median wall time, ratios, throughput of used data, peak RSS, whether the outputs agree,
 * which targets are met) and writes it to docs/performance.md. Bench code is not part of the
 * test suite; nothing asserts a time.
 *
 * Every timed command starts from the same state: its input is read into the page cache, its
 * output is removed and `sync` flushes the dirty pages of the previous run before the clock
 * starts, so no run pays for another's writeback or unlink, or for a cold input.
 *
 * Needs root (for the ntfs-3g mount that fills the NTFS image), e2fsprogs, ntfs-3g, qemu-utils.
 *
 * Usage: deno task bench [--runs N] [--size GiB] [--jobs substring,...] [--out FILE] [--keep DIR]
 *
 * `--keep DIR` builds the inputs in DIR (or reuses those already there for the same `--size`) and
 * leaves them for the next run.
 *
 * @module
 */
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string" },
    size: { type: "string" },
    jobs: { type: "string" },
    out: { type: "string" },
    keep: { type: "string" },
  },
});
const RUNS = Number(values.runs ?? 5);
const SIZE_GIB = Number(values.size ?? 4);
const OUT = values.out ?? `${ROOT}/docs/performance.md`;
const only = values.jobs?.split(",");
const dec = new TextDecoder();

function sh(cmd: string): string {
  const o = new Deno.Command("bash", { args: ["-c", cmd], stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!o.success) throw new Error(`${cmd}\n${dec.decode(o.stderr)}`);
  return dec.decode(o.stdout);
}
const have = (t: string) => {
  try {
    sh(`command -v ${t}`);
    return true;
  } catch {
    return false;
  }
};
const TIME = have("/usr/bin/time") ? "/usr/bin/time" : undefined;

/**
 * Runs `cmd` once after reading `input` into the page cache, removing `outputs` and flushing
 * dirty pages (all untimed); returns wall ms and peak RSS in KiB (when /usr/bin/time exists).
 */
function measure(
  cmd: string,
  outputs: readonly string[] = [],
  input?: string,
): { ms: number; rssKiB?: number } {
  // Untimed: the input back in the page cache (other work on the machine may have evicted it),
  // the outputs of the last run removed and every dirty page written back.
  sh(`${input ? `cat ${input} > /dev/null; ` : ""}rm -f ${outputs.join(" ")}; sync`);
  const wrapped = TIME ? `${TIME} -f '__RSS %M' bash -c ${JSON.stringify(cmd)}` : cmd;
  const t0 = performance.now();
  const o = new Deno.Command("bash", { args: ["-c", wrapped], stdout: "null", stderr: "piped" })
    .outputSync();
  const ms = performance.now() - t0;
  const err = dec.decode(o.stderr);
  if (!o.success) throw new Error(`${cmd} failed:\n${err}`);
  const m = /__RSS (\d+)/.exec(err);
  return { ms, rssKiB: m ? Number(m[1]) : undefined };
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const work = values.keep ?? Deno.makeTempDirSync({ prefix: "fsimage-bench-" });
Deno.mkdirSync(work, { recursive: true });
// Inputs kept from a run with another --size are rebuilt.
const stamp = `${work}/inputs.json`;
try {
  if (JSON.parse(Deno.readTextFileSync(stamp)).size !== SIZE_GIB) {
    sh(`rm -rf ${work}/tree ${work}/*.img ${work}/*.e2i ${work}/*.qcow2 ${work}/*.nimg`);
  }
} catch {
  // first run in this directory
}
Deno.writeTextFileSync(stamp, JSON.stringify({ size: SIZE_GIB }));
const fs = `${Deno.execPath()} run -A ${ROOT}/main.ts`;
const exists = (p: string) => {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
};

// ---- inputs ----
function buildTree(dir: string, dataBytes: number): void {
  if (exists(`${dir}/.done`)) return;
  sh(`rm -rf ${dir} && mkdir -p ${dir}/small ${dir}/large`);
  // many small files (1-16 KiB) and a few large ones, random data
  sh(`cd ${dir}/small && for d in $(seq 1 40); do mkdir d$d; for f in $(seq 1 250); do
        head -c $(( (RANDOM % 16 + 1) * 1024 )) /dev/urandom > d$d/f$f; done; done`);
  const large = Math.max(1, Math.floor((dataBytes - 40 * 250 * 8192) / (256 << 20)));
  for (let i = 0; i < large; i++) sh(`head -c ${256 << 20} /dev/urandom > ${dir}/large/big${i}`);
  sh(`touch ${dir}/.done`);
}
const dataBytes = Math.floor(SIZE_GIB * 0.4 * 2 ** 30);
const tree = `${work}/tree`;
const ext4 = `${work}/ext4.img`, ntfs = `${work}/ntfs.img`, manyInodes = `${work}/inodes.img`;
const huge = `${work}/huge.img`;
console.error(
  `bench: building inputs in ${work} (${SIZE_GIB} GiB images, ~${
    (dataBytes / 2 ** 30).toFixed(1)
  } GiB of data)`,
);
buildTree(tree, dataBytes);
if (!exists(ext4)) sh(`mkfs.ext4 -q -F -d ${tree} ${ext4} ${SIZE_GIB}G`);
if (!exists(manyInodes)) {
  sh(`rm -rf ${work}/itree && mkdir -p ${work}/itree && cd ${work}/itree &&
      for d in $(seq 1 200); do mkdir d$d; (cd d$d && touch $(seq -f 'f%g' 1 1000)); done`);
  sh(`mkfs.ext4 -q -F -N 220000 -d ${work}/itree ${manyInodes} 2G && rm -rf ${work}/itree`);
}
if (!exists(huge)) {
  sh(`truncate -s 8T ${huge} && mkfs.ext4 -q -F -E lazy_itable_init=1,nodiscard ${huge}`);
}
if (!exists(ntfs)) {
  sh(`truncate -s ${SIZE_GIB}G ${ntfs} && mkntfs -q -F -f ${ntfs}`);
  sh(
    `mkdir -p ${work}/mnt && ntfs-3g ${ntfs} ${work}/mnt && cp -r ${tree}/small ${tree}/large ${work}/mnt/ &&
      umount ${work}/mnt`,
  );
}
const norm = `${work}/ext4.e2i`;
if (!exists(norm)) sh(`e2image ${ext4} ${norm}`);
const qcow = `${work}/ext4.qcow2`;
if (!exists(qcow)) sh(`e2image -Qa ${ext4} ${qcow}`);
const nimg = `${work}/ntfs.nimg`;
if (!exists(nimg)) sh(`ntfsclone -q --save-image -O ${nimg} ${ntfs}`);
const target = `${work}/ext4-target.img`;
sh(`cp --sparse=always ${ext4} ${target}`);

// ---- jobs ----
interface Job {
  name: string;
  /** "data": copies file data (target: 2× faster than native, within 1.25× of qemu-img);
   * "metadata": metadata only (target: no slower than native). */
  kind: "data" | "metadata" | "info";
  ours: string;
  native: string;
  nativeName: string;
  /**
   * The same image through `qemu-img convert` (writes `o3`): the copy ceiling. ntfsclone ends
   * with fsync of its output, so its ceiling is `qemu-img convert -t writeback`, which ends with
   * fdatasync (the default cache mode of convert never flushes).
   */
  ceiling?: string;
  /** The file every command reads, put back in the page cache before each run (untimed). */
  input?: string;
  /** Files each command replaces (removed before it runs, untimed). */
  outputs?: [string[], string[]];
  /** File whose allocated size is the "used data" moved (default: the ours output). */
  output?: string;
  /** How to check that the two outputs agree after the runs. */
  same?: "cmp" | "qemu-img compare";
  /** Targets that are part of the issue's list (the others are informational). */
  required?: boolean;
}
const o1 = `${work}/out-ours`, o2 = `${work}/out-native`, o3 = `${work}/out-ceiling`;
const outs: [string[], string[]] = [[o1], [o2]];
const jobs: Job[] = [
  {
    name: "startup (fsimage --version vs true)",
    kind: "info",
    ours: `${fs} --version`,
    native: `true`,
    nativeName: "true",
  },
  {
    name: "e2image -r",
    input: ext4,
    kind: "metadata",
    ours: `${fs} e2image -r ${ext4} ${o1}`,
    native: `e2image -r ${ext4} ${o2}`,
    nativeName: "e2image",
    same: "cmp",
  },
  {
    name: "e2image -ra",
    input: ext4,
    kind: "data",
    ours: `${fs} e2image -ra ${ext4} ${o1}`,
    native: `e2image -ra ${ext4} ${o2}`,
    nativeName: "e2image",
    ceiling: `qemu-img convert -O raw ${ext4} ${o3}`,
    same: "cmp",
    required: true,
  },
  {
    name: "e2image -Q",
    input: ext4,
    kind: "metadata",
    ours: `${fs} e2image -Q ${ext4} ${o1}`,
    native: `e2image -Q ${ext4} ${o2}`,
    nativeName: "e2image",
    same: "qemu-img compare",
  },
  {
    name: "e2image -Qa",
    input: ext4,
    kind: "data",
    ours: `${fs} e2image -Qa ${ext4} ${o1}`,
    native: `e2image -Qa ${ext4} ${o2}`,
    nativeName: "e2image",
    ceiling: `qemu-img convert -O qcow2 ${ext4} ${o3}`,
    same: "qemu-img compare",
    required: true,
  },
  {
    name: "e2image -I",
    input: norm,
    kind: "metadata",
    ours: `${fs} e2image -I ${target} ${norm}`,
    native: `e2image -I ${target} ${norm}`,
    nativeName: "e2image",
    output: norm,
    outputs: [[], []],
  },
  {
    name: "e2image -r, 200k inodes",
    input: manyInodes,
    kind: "metadata",
    ours: `${fs} e2image -r ${manyInodes} ${o1}`,
    native: `e2image -r ${manyInodes} ${o2}`,
    nativeName: "e2image",
    same: "cmp",
    required: true,
  },
  {
    name: "e2image -r, 8 TiB sparse",
    kind: "metadata",
    ours: `${fs} e2image -r ${huge} ${o1}`,
    native: `e2image -r ${huge} ${o2}`,
    nativeName: "e2image",
    same: "cmp",
    required: true,
  },
  {
    name: "QCOW2 → raw (e2image -r)",
    input: qcow,
    kind: "data",
    ours: `${fs} e2image -r ${qcow} ${o1}`,
    native: `e2image -r ${qcow} ${o2}`,
    nativeName: "e2image",
    ceiling: `qemu-img convert -O raw ${qcow} ${o3}`,
    same: "cmp",
    required: true,
  },
  {
    name: "ntfsclone clone to file",
    input: ntfs,
    kind: "data",
    ours: `${fs} ntfsclone -q -O ${o1} ${ntfs}`,
    native: `ntfsclone -q -O ${o2} ${ntfs}`,
    nativeName: "ntfsclone",
    ceiling: `qemu-img convert -t writeback -O raw ${ntfs} ${o3}`,
    same: "cmp",
    required: true,
  },
  {
    name: "ntfsclone --save-image to file",
    input: ntfs,
    kind: "data",
    ours: `${fs} ntfsclone -q -s -O ${o1} ${ntfs}`,
    native: `ntfsclone -q -s -O ${o2} ${ntfs}`,
    nativeName: "ntfsclone",
    ceiling: `qemu-img convert -t writeback -O raw ${ntfs} ${o3}`,
    same: "cmp",
    required: true,
  },
  {
    name: "ntfsclone --save-image to stdout",
    input: ntfs,
    kind: "data",
    ours: `${fs} ntfsclone -q -s -o - ${ntfs} | cat > /dev/null`,
    native: `ntfsclone -q -s -o - ${ntfs} | cat > /dev/null`,
    nativeName: "ntfsclone",
    output: nimg,
    outputs: [[], []],
    required: true,
  },
  {
    name: "ntfsclone --restore-image",
    input: nimg,
    kind: "data",
    ours: `${fs} ntfsclone -q -r -O ${o1} ${nimg}`,
    native: `ntfsclone -q -r -O ${o2} ${nimg}`,
    nativeName: "ntfsclone",
    ceiling: `qemu-img convert -t writeback -O raw ${ntfs} ${o3}`,
    same: "cmp",
    required: true,
  },
  {
    name: "ntfsclone --metadata",
    input: ntfs,
    kind: "metadata",
    ours: `${fs} ntfsclone -q -m -O ${o1} ${ntfs}`,
    native: `ntfsclone -q -m -O ${o2} ${ntfs}`,
    nativeName: "ntfsclone",
    same: "cmp",
  },
];

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (kib: number[]) => kib.length ? `${(Math.max(...kib) / 1024).toFixed(0)} MiB` : "n/a";
const rows: string[] = [];
const met: string[] = [];
const missed: string[] = [];
for (const j of jobs) {
  if (only && !only.some((s) => j.name.includes(s))) continue;
  const [outO, outN] = j.outputs ?? outs;
  const ours: number[] = [], native: number[] = [], ceil: number[] = [];
  const rssO: number[] = [], rssN: number[] = [];
  try {
    // Warm the page cache and check that every command works.
    measure(j.ours, outO, j.input);
    measure(j.native, outN, j.input);
    if (j.ceiling) measure(j.ceiling, [o3], j.input);
    for (let i = 0; i < RUNS; i++) {
      const a = measure(j.ours, outO, j.input), b = measure(j.native, outN, j.input);
      ours.push(a.ms);
      native.push(b.ms);
      if (a.rssKiB) rssO.push(a.rssKiB);
      if (b.rssKiB) rssN.push(b.rssKiB);
      if (j.ceiling) ceil.push(measure(j.ceiling, [o3], j.input).ms);
    }
  } catch (e) {
    rows.push(
      `| ${j.name} | failed | | | | | | | | | ${
        (e as Error).message.split("\n")[0]!.slice(0, 80)
      } |`,
    );
    console.error(rows.at(-1));
    continue;
  }
  const a = median(ours), b = median(native);
  const c = ceil.length ? median(ceil) : undefined;
  const outFile = j.output ?? o1;
  const used = exists(outFile) ? (Deno.statSync(outFile).blocks ?? 0) * 512 : 0;
  let same = "";
  if (j.same === "cmp") {
    // Same length and the same bytes; `qemu-img compare` skips holes (SEEK_DATA), so an 8 TiB
    // sparse output compares in a moment where `cmp` would read 8 TiB of zeros.
    same = Deno.statSync(o1).size === Deno.statSync(o2).size &&
        new Deno.Command("qemu-img", { args: ["compare", "-q", "-f", "raw", "-F", "raw", o1, o2] })
          .outputSync().success
      ? "identical"
      : "DIFFER";
  } else if (j.same === "qemu-img compare") {
    same = new Deno.Command("qemu-img", { args: ["compare", "-q", o1, o2] }).outputSync().success
      ? "same guest data"
      : "DIFFER";
  }
  const goals: string[] = [];
  const check = (ok: boolean, what: string) => {
    goals.push(`${ok ? "✓" : "✗"} ${what}`);
    if (j.required) (ok ? met : missed).push(`${j.name}: ${what}`);
  };
  if (j.kind === "data") {
    check(a <= b / 2, "2× native");
    if (c !== undefined) check(a <= 1.25 * c, "≤ 1.25× qemu-img");
  } else if (j.kind === "metadata") check(a <= b, "≤ native");
  if (rssO.length) check(Math.max(...rssO) < 200 * 1024, "< 200 MiB");
  rows.push(
    [
      "",
      j.name,
      secs(a),
      `${j.nativeName}: ${secs(b)}`,
      (a / b).toFixed(2),
      c === undefined ? "" : secs(c),
      c === undefined ? "" : (a / c).toFixed(2),
      j.kind === "info" ? "" : `${(used / 1e6).toFixed(0)} MB`,
      j.kind === "info" ? "" : `${(used / 1e6 / (a / 1000)).toFixed(0)} MB/s`,
      `${mib(rssO)} / ${mib(rssN)}`,
      same,
      goals.join(", "),
      "",
    ].join(" | ").trim(),
  );
  console.error(rows.at(-1));
}
const cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").trim();
const kernel = sh("uname -r").trim();
const table = [
  `Measured by \`deno task bench --runs ${RUNS} --size ${SIZE_GIB}\` on ${
    new Date().toISOString().slice(0, 10)
  } with Deno ${Deno.version.deno}, ${cpu}, ${navigator.hardwareConcurrency} cores, Linux ${kernel}.`,
  `Each job ran ${RUNS} times alternately with fsimage, the native tool and (for data-copying jobs)`,
  "`qemu-img convert` on the same image; the table gives medians. Before every timed command its",
  "input is read into the page cache, its output is removed and `sync` flushes the previous run's",
  "dirty pages (untimed; the 8 TiB image is not pre-read). fsimage runs as `deno run -A main.ts`,",
  "so its times include Deno's startup (first row).",
  "",
  `Inputs: ${SIZE_GIB} GiB ext4 and NTFS images with ~${
    (dataBytes / 2 ** 30).toFixed(1)
  } GiB of data (10,000 files of 1-16 KiB and`,
  "256 MiB files of random data), a 2 GiB ext4 with 200,000 inodes, an 8 TiB sparse ext4, the",
  "e2image normal image and `e2image -Qa` QCOW2 image of the ext4, and the ntfsclone image of the NTFS.",
  "",
  "Ratios are fsimage's time divided by the other's: below 1 means fsimage is faster. Used data is",
  "the allocated size of fsimage's output; throughput is that divided by fsimage's time. Output",
  "compares fsimage's output with the native tool's: raw images by length and `qemu-img compare`",
  "(byte for byte, holes skipped), QCOW2 images by `qemu-img compare` of their guest data.",
  'Targets (issue "Performance"): data-copying jobs at least 2× faster than the native tool and',
  "within 1.25× of `qemu-img convert` (`-t writeback` for ntfsclone's jobs: ntfsclone and fsimage",
  "end with fsync of the output, as qemu-img does only in that cache mode); metadata-only jobs no",
  "slower than the native tool (required for the 200,000-inode and the 8 TiB filesystems); peak RSS",
  "under 200 MiB.",
  "",
  "| job | fsimage | native | ÷ native | qemu-img convert | ÷ qemu-img | used data | throughput | peak RSS (fsimage / native) | output | targets |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ...rows,
  "",
  `Required targets met: ${met.length} of ${met.length + missed.length}.` +
  (missed.length ? ` Not met: ${missed.join("; ")}.` : ""),
  "",
].join("\n");
console.log(table);
// The measured part sits between two markers; what the file says around them (the analysis of
// what bounds each job) is kept.
const START = "<!-- bench:start (generated by scripts/bench.ts; edit outside the markers) -->";
const END = "<!-- bench:end -->";
let doc = `# Performance\n\n${START}\n${END}\n`;
try {
  const old = Deno.readTextFileSync(OUT);
  if (old.includes(START) && old.includes(END)) doc = old;
} catch {
  // a new file
}
if (only && values.out === undefined) {
  console.error("bench: --jobs without --out: docs/performance.md left as it was");
} else {
  Deno.writeTextFileSync(
    OUT,
    doc.slice(0, doc.indexOf(START) + START.length) + "\n" + table + doc.slice(doc.indexOf(END)),
  );
  // `deno fmt --check` covers docs/: keep the generated table formatted.
  new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", OUT], stdout: "null", stderr: "null" })
    .outputSync();
}
if (!values.keep) Deno.removeSync(work, { recursive: true });
