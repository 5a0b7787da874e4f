import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { getopt, strtoull } from "../../lib/cli/e2image_getopt.ts";
import { e2imagePercent, E2imageProgress, formatHms } from "../../lib/cli/e2image_progress.ts";

const OPT = "b:B:nrsIQafo:O:pc";

Deno.test("getopt() permutes operands, clusters flags and takes glued or separate arguments", () => {
  const r = getopt(["fs.img", "-aro", "1048576", "out", "-O0x10", "--", "-r"], OPT);
  assertEquals(r.operands, ["fs.img", "out", "-r"]);
  assertEquals(r.events, [
    { kind: "option", option: "a" },
    { kind: "option", option: "r" },
    { kind: "option", option: "o", argument: "1048576" },
    { kind: "option", option: "O", argument: "0x10" },
  ]);
});

Deno.test("getopt() takes an argument that starts with a dash and treats '-' as an operand", () => {
  const r = getopt(["-o", "-5", "-", "x"], OPT);
  assertEquals(r.operands, ["-", "x"]);
  assertEquals(r.events, [{ kind: "option", option: "o", argument: "-5" }]);
});

Deno.test("getopt() stops at the first invalid or argument-less option", () => {
  assertEquals(getopt(["-rx", "-Q"], OPT).events, [
    { kind: "option", option: "r" },
    { kind: "invalid", option: "x" },
  ]);
  assertEquals(getopt(["a", "-o"], OPT).events, [{ kind: "missing", option: "o" }]);
  assertEquals(getopt(["--foo"], OPT).events, [{ kind: "invalid", option: "-" }]);
});

Deno.test("strtoull() follows C base-0 rules", () => {
  const table: Array<[string, bigint]> = [
    ["0", 0n],
    ["1048576", 1048576n],
    ["0x100000", 1048576n],
    ["0X1f", 31n],
    ["010", 8n],
    ["09", 0n],
    ["1M", 1n],
    ["  +7", 7n],
    ["-1", (1n << 64n) - 1n],
    ["junk", 0n],
    ["0x", 0n],
    ["99999999999999999999999", (1n << 64n) - 1n],
  ];
  for (const [s, v] of table) assertEquals(strtoull(s), v, s);
});

Deno.test("e2image progress formats match e2image 1.47.0", () => {
  assertEquals(e2imagePercent(4394, 4396), 100);
  assertEquals(e2imagePercent(4288, 4165), 103);
  assertEquals(e2imagePercent(1, 3), 33);
  assertEquals(formatHms(3661), "01:01:01");
  assertEquals(formatHms(86400 + 5), "00:00:05");
  let t = 0;
  let text = "";
  const p = new E2imageProgress({ write: (s) => (text += s) }, 4391, 1024, () => t);
  p.start();
  assertEquals(text, "Copying 0 / 4391 blocks (0%)");
  t = 1;
  p.update(100);
  assertEquals(text.slice(28), "\b".repeat(20) + "100 / 4391 blocks (2%)");
  t = 7;
  text = "";
  p.update(200);
  assertEquals(text, "\b".repeat(22) + "200 / 4391 blocks (5%) 00:02:26 remaining at 0.03 MB/s");
  text = "";
  t = 32;
  p.finish(4391);
  assertEquals(text, "\rCopied 4391 / 4391 blocks (100%) in 00:00:32 at 0.13 MB/s       \n");
});
