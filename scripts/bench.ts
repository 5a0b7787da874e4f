/**
 * `deno task bench`: runs each job with fsimage and with the native tool alternately in the same
 * run, several times, and prints a markdown table of median wall times and ratios. Bench code is
 * not part of the test suite; no test asserts a time.
 *
 * Usage: deno task bench [--runs N] [--size MiB] [--out docs/performance.md]
 *
 * @module
 */
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string" }, size: { type: "string" }, out: { type: "string" } },
});
const RUNS = Number(values.runs ?? 5);
const SIZE_MIB = Number(values.size ?? 1024);

function sh(cmd: string): number {
  const t0 = performance.now();
  const o = new Deno.Command("sh", { args: ["-c", cmd], stdout: "null", stderr: "piped" })
    .outputSync();
  if (!o.success) throw new Error(`${cmd}: ${new TextDecoder().decode(o.stderr)}`);
  return performance.now() - t0;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Job {
  name: string;
  ours: string;
  native: string;
  nativeName: string;
  setup?: string;
}

const work = Deno.makeTempDirSync({ prefix: "fsimage-bench-" });
const deno = `${Deno.execPath()} run -A ${ROOT}/main.ts`;
try {
  // An image with data in one half and holes/zeros in the other.
  sh(
    `head -c ${
      SIZE_MIB / 2 * 1048576
    } /dev/urandom > ${work}/src.img && truncate -s ${SIZE_MIB}M ${work}/src.img`,
  );
  const jobs: Job[] = [
    {
      name: "sparse copy (file → file)",
      ours: `rm -f ${work}/o1 && ${deno} copy -q ${work}/src.img ${work}/o1`,
      native:
        `rm -f ${work}/o2 && dd if=${work}/src.img of=${work}/o2 bs=4M conv=sparse status=none`,
      nativeName: "dd bs=4M conv=sparse",
    },
  ];
  const rows: string[] = [];
  for (const j of jobs) {
    const ours: number[] = [], native: number[] = [];
    sh(j.ours);
    sh(j.native); // warm the cache
    for (let i = 0; i < RUNS; i++) {
      ours.push(sh(j.ours));
      native.push(sh(j.native));
    }
    const a = median(ours), b = median(native);
    const mbps = (SIZE_MIB / 2) / (a / 1000);
    rows.push(
      `| ${j.name} | ${a.toFixed(0)} ms | ${j.nativeName}: ${b.toFixed(0)} ms | ${
        (a / b).toFixed(2)
      } | ${mbps.toFixed(0)} MB/s |`,
    );
    console.error(rows[rows.length - 1]);
  }
  const table = [
    `Measured by \`deno task bench\` (${RUNS} alternating runs, medians; ${SIZE_MIB} MiB image, page cache warm).`,
    "",
    "| job | fsimage | native | ratio fsimage/native | throughput (used data) |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
  console.log(table);
  if (values.out) Deno.writeTextFileSync(values.out, `# Performance\n\n${table}`);
} finally {
  Deno.removeSync(work, { recursive: true });
}
