/**
 * `deno task fuzz`: seeded mutation fuzzing of every parser and walker (scripts/fuzz/targets.ts).
 * Every outcome must be success or a clean domain error; crashes and slow cases are written to
 * tests/fixtures/fuzz/crashers/ as regression inputs.
 *
 * Usage: deno task fuzz [--cases N] [--seed S] [--target NAME] [--time-limit MS]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { fuzz } from "./fuzz/engine.ts";
import { TARGETS } from "./fuzz/targets.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    cases: { type: "string" },
    seed: { type: "string" },
    target: { type: "string", multiple: true },
    "time-limit": { type: "string" },
  },
});
const cases = Number(values.cases ?? 100_000);
const seed = Number(values.seed ?? 1);
const dir = new URL("../tests/fixtures/fuzz/crashers/", import.meta.url);
let failed = 0;
console.log("| target | cases | ok | rejected cleanly | findings | slowest case |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const t of TARGETS) {
  if (values.target && !values.target.includes(t.name)) continue;
  const rep = fuzz(t, {
    cases,
    seed,
    timeLimitMs: Number(values["time-limit"] ?? 2000),
    onFinding: (f) => {
      Deno.mkdirSync(dir, { recursive: true });
      const file = new URL(`${f.target}-${seed}-${f.index}.bin.gz`, dir);
      Deno.writeFileSync(file, gzipSync(f.input));
      console.error(
        `finding (${f.kind}) in ${f.target} case ${f.index}: ${
          f.detail.split("\n")[0]
        } -> ${file.pathname}`,
      );
    },
  });
  failed += rep.findings.length;
  console.log(
    `| ${rep.target} | ${rep.cases} | ${rep.ok} | ${rep.rejected} | ${rep.findings.length} | ${
      rep.slowestMs.toFixed(1)
    } ms |`,
  );
}
Deno.exit(failed ? 1 : 0);
