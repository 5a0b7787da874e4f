/**
 * `deno task bench`: builds its inputs (a multi-GiB ext4 and NTFS image full of real data, a
 * metadata-heavy ext4 with ~200,000 inodes, a sparse multi-TiB ext4), then runs every job with
 * fsimage and with the native tool alternately in the same run, several times, and prints a
 * markdown table: median wall time, ratio fsimage/native, throughput of used data, peak RSS. The
 * table is written to docs/performance.md. Bench code is not part of the test suite.
 *
 * Needs root (for the ntfs-3g mount that fills the NTFS image), e2fsprogs, ntfs-3g, qemu-utils.
 *
 * Usage: deno task bench [--runs N] [--size GiB] [--jobs substring,...] [--out FILE] [--keep DIR]
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

/** Runs `cmd` once; returns wall ms and peak RSS in KiB (when /usr/bin/time exists). */
function measure(cmd: string): { ms: number; rssKiB?: number } {
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
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const work = values.keep ?? Deno.makeTempDirSync({ prefix: "fsimage-bench-" });
Deno.mkdirSync(work, { recursive: true });
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
  ours: string;
  native: string;
  nativeName: string;
  /** File whose allocated size is the "used data" moved (default: the ours output). */
  output?: string;
  ceiling?: boolean;
}
const o1 = `${work}/out-ours`, o2 = `${work}/out-native`;
const jobs: Job[] = [
  {
    name: "e2image -r",
    ours: `rm -f ${o1}; ${fs} e2image -r ${ext4} ${o1}`,
    native: `rm -f ${o2}; e2image -r ${ext4} ${o2}`,
    nativeName: "e2image",
  },
  {
    name: "e2image -ra",
    ours: `rm -f ${o1}; ${fs} e2image -ra ${ext4} ${o1}`,
    native: `rm -f ${o2}; e2image -ra ${ext4} ${o2}`,
    nativeName: "e2image",
  },
  {
    name: "e2image -Q",
    ours: `rm -f ${o1}; ${fs} e2image -Q ${ext4} ${o1}`,
    native: `rm -f ${o2}; e2image -Q ${ext4} ${o2}`,
    nativeName: "e2image",
  },
  {
    name: "e2image -Qa",
    ours: `rm -f ${o1}; ${fs} e2image -Qa ${ext4} ${o1}`,
    native: `rm -f ${o2}; e2image -Qa ${ext4} ${o2}`,
    nativeName: "e2image",
  },
  {
    name: "e2image -I",
    ours: `${fs} e2image -I ${target} ${norm}`,
    native: `e2image -I ${target} ${norm}`,
    nativeName: "e2image",
    output: norm,
  },
  {
    name: "e2image -r, 200k inodes",
    ours: `rm -f ${o1}; ${fs} e2image -r ${manyInodes} ${o1}`,
    native: `rm -f ${o2}; e2image -r ${manyInodes} ${o2}`,
    nativeName: "e2image",
  },
  {
    name: "e2image -r, 8 TiB sparse",
    ours: `rm -f ${o1}; ${fs} e2image -r ${huge} ${o1}`,
    native: `rm -f ${o2}; e2image -r ${huge} ${o2}`,
    nativeName: "e2image",
  },
  {
    name: "QCOW2 → raw",
    ours: `rm -f ${o1}; ${fs} e2image -r ${qcow} ${o1}`,
    native: `rm -f ${o2}; qemu-img convert -O raw ${qcow} ${o2}`,
    nativeName: "qemu-img convert",
  },
  {
    name: "ntfsclone clone to file",
    ours: `${fs} ntfsclone -q -O ${o1} ${ntfs}`,
    native: `ntfsclone -q -O ${o2} ${ntfs}`,
    nativeName: "ntfsclone",
  },
  {
    name: "ntfsclone --save-image to file",
    ours: `${fs} ntfsclone -q -s -O ${o1} ${ntfs}`,
    native: `ntfsclone -q -s -O ${o2} ${ntfs}`,
    nativeName: "ntfsclone",
  },
  {
    name: "ntfsclone --save-image to stdout",
    ours: `${fs} ntfsclone -q -s -o - ${ntfs} | cat > /dev/null`,
    native: `ntfsclone -q -s -o - ${ntfs} | cat > /dev/null`,
    nativeName: "ntfsclone",
    output: nimg,
  },
  {
    name: "ntfsclone --restore-image",
    ours: `${fs} ntfsclone -q -r -O ${o1} ${nimg}`,
    native: `ntfsclone -q -r -O ${o2} ${nimg}`,
    nativeName: "ntfsclone",
  },
  {
    name: "ntfsclone --metadata",
    ours: `${fs} ntfsclone -q -m -O ${o1} ${ntfs}`,
    native: `ntfsclone -q -m -O ${o2} ${ntfs}`,
    nativeName: "ntfsclone",
  },
  {
    name: "ceiling: qemu-img convert -O raw (ext4)",
    ours: `rm -f ${o1}; qemu-img convert -O raw ${ext4} ${o1}`,
    native: `rm -f ${o2}; dd if=${ext4} of=${o2} bs=4M conv=sparse status=none`,
    nativeName: "dd bs=4M conv=sparse",
    ceiling: true,
  },
  {
    name: "ceiling: qemu-img convert -O qcow2 (ext4)",
    ours: `rm -f ${o1}; qemu-img convert -O qcow2 ${ext4} ${o1}`,
    native: `rm -f ${o2}; qemu-img convert -O raw ${ntfs} ${o2}`,
    nativeName: "qemu-img convert -O raw (ntfs)",
    ceiling: true,
  },
];

const rows: string[] = [];
for (const j of jobs) {
  if (only && !only.some((s) => j.name.includes(s))) continue;
  const ours: number[] = [], native: number[] = [], rssO: number[] = [], rssN: number[] = [];
  try {
    measure(j.ours);
    measure(j.native); // warm the page cache and check both work
    for (let i = 0; i < RUNS; i++) {
      const a = measure(j.ours), b = measure(j.native);
      ours.push(a.ms);
      native.push(b.ms);
      if (a.rssKiB) rssO.push(a.rssKiB);
      if (b.rssKiB) rssN.push(b.rssKiB);
    }
  } catch (e) {
    rows.push(
      `| ${j.name} | failed | | | | ${(e as Error).message.split("\n")[0]!.slice(0, 80)} |`,
    );
    console.error(rows.at(-1));
    continue;
  }
  const a = median(ours), b = median(native);
  const outFile = j.output ?? o1;
  const used = exists(outFile) ? (Deno.statSync(outFile).blocks ?? 0) * 512 : 0;
  const mbps = used / 1e6 / (a / 1000);
  const rss = (xs: number[]) => xs.length ? `${(Math.max(...xs) / 1024).toFixed(0)} MiB` : "n/a";
  const first = j.ceiling
    ? j.ours.replace(/^rm -f \S+; /, "").split(" ").slice(0, 3).join(" ")
    : "fsimage";
  rows.push(
    `| ${j.name} | ${first}: ${(a / 1000).toFixed(2)} s | ${j.nativeName}: ${
      (b / 1000).toFixed(2)
    } s | ` +
      `${(a / b).toFixed(2)} | ${mbps.toFixed(0)} MB/s | ${rss(rssO)} / ${rss(rssN)} |`,
  );
  console.error(rows.at(-1));
}
const cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").trim();
const table = [
  "# Performance",
  "",
  `Measured by \`deno task bench\` on ${
    new Date().toISOString().slice(0, 10)
  }: ${RUNS} alternating runs per job,`,
  `medians, page cache warm; ${SIZE_GIB} GiB ext4 and NTFS images with ~${
    (dataBytes / 2 ** 30).toFixed(1)
  } GiB of data`,
  `(10,000 small files and 256 MiB files), a 2 GiB ext4 with 200,000 inodes, an 8 TiB sparse ext4; ${cpu}, ${navigator.hardwareConcurrency} cores.`,
  "A ratio below 1 means fsimage is faster. Throughput is allocated output bytes per second.",
  "",
  "| job | fsimage | native | ratio | throughput | peak RSS (fsimage / native) |",
  "| --- | --- | --- | --- | --- | --- |",
  ...rows,
  "",
].join("\n");
console.log(table);
Deno.writeTextFileSync(OUT, table);
if (!values.keep) Deno.removeSync(work, { recursive: true });
