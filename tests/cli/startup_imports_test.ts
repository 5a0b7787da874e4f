/**
 * Start-up cost: no module reachable by static imports from the CLI's entry points imports
 * `node:fs` or `node:zlib` (loading either starts Deno's Node compatibility layer, 20–30 ms of
 * every run), and the runs that need neither really load neither at run time.
 */
import assert from "node:assert/strict";
import { needs, ROOT, run, tempDir } from "../_helpers.ts";
import { ntfsFixture } from "../ntfs/_fixtures.ts";

/** The built-ins that must not be loaded by a run that names its files. */
const HEAVY = ["node:fs", "node:zlib"];

/** The entry points: the CLI and every command module it imports on demand. */
const ROOTS = [
  "main.ts",
  "lib/cli/main.ts",
  "lib/cli/e2image.ts",
  "lib/cli/ntfsclone.ts",
  "lib/cli/copy.ts",
  "lib/cli/audit.ts",
  "lib/cli/scrub.ts",
];

interface InfoDependency {
  specifier: string;
  code?: { specifier?: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

/**
 * For each module reachable from `root` through static, non-type-only imports (what Deno
 * loads before the first line runs), the module that imports it: `deno info --json` lists
 * dynamic imports too, marked `isDynamic`, and type-only imports without a `code` entry.
 */
function staticGraph(root: string): Map<string, string> {
  const path = root.startsWith("/") ? root : `${ROOT}/${root}`;
  const r = run(Deno.execPath(), ["info", "--json", path], { cwd: ROOT });
  assert.deepEqual(r.code, 0, r.err);
  const info = JSON.parse(r.out) as { roots: string[]; modules: InfoModule[] };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const start = info.roots[0]!;
  const parent = new Map<string, string>([[start, ""]]);
  const todo = [start];
  while (todo.length) {
    const m = bySpec.get(todo.pop()!);
    for (const d of m?.dependencies ?? []) {
      const target = d.code?.specifier;
      if (!target || d.isDynamic || parent.has(target)) continue;
      parent.set(target, m!.specifier);
      todo.push(target);
    }
  }
  return parent;
}

Deno.test("staticGraph() sees node built-ins and skips dynamic and type-only imports", () => {
  using dir = tempDir();
  const w = (name: string, text: string) => Deno.writeTextFileSync(`${dir.path}/${name}`, text);
  w("a.ts", 'import "./b.ts";\nexport const f = () => import("node:zlib");\n');
  w("b.ts", 'import type { Stats } from "node:fs";\nimport "node:util";\nexport let s: Stats;\n');
  const g = staticGraph(`${dir.path}/a.ts`);
  assert(g.has("node:util"), [...g.keys()].join(" "));
  assert(!g.has("node:zlib") && !g.has("node:fs"), [...g.keys()].join(" "));
});

for (const root of ROOTS) {
  Deno.test(`${root} imports neither node:fs nor node:zlib statically`, () => {
    const g = staticGraph(root);
    for (const heavy of HEAVY) {
      assert(!g.has(heavy), `${heavy} is imported statically by ${g.get(heavy)} (from ${root})`);
    }
  });
}

/** Runs fsimage in-process through _startup_probe.ts; returns the built-ins it loaded. */
function loadedBy(args: string[], stdin?: string): { code: number; loaded: string[]; err: string } {
  const r = run(
    Deno.execPath(),
    ["run", "--no-prompt", "-A", `${ROOT}/tests/cli/_startup_probe.ts`, ...args],
    stdin === undefined ? {} : { stdin },
  );
  const m = /node built-ins: (\[.*\])\n$/.exec(r.err);
  if (!m) throw new Error(`no list of built-ins in: ${r.err}`);
  return { code: r.code, loaded: JSON.parse(m[1]!) as string[], err: r.err };
}

Deno.test("runs on named files load neither node:fs nor node:zlib", needs("mkfs.ext4"), () => {
  using dir = tempDir();
  const d = dir.path;
  run("mkfs.ext4", ["-q", "-F", "-N", "256", `${d}/fs.img`, "4M"]);
  const cases: string[][] = [
    ["--version"],
    ["e2image", "-r", `${d}/fs.img`, `${d}/out.raw`],
    ["e2image", "-Q", `${d}/fs.img`, `${d}/out.qcow2`],
    ["e2image", `${d}/fs.img`, `${d}/out.e2i`],
    ["e2image", "-r", `${d}/out.qcow2`, `${d}/back.raw`],
    ["copy", `${d}/fs.img`, `${d}/copy.img`],
    ["audit", `${d}/fs.img`],
  ];
  for (const args of cases) {
    const r = loadedBy(args);
    assert.deepEqual(r.code, 0, `${args.join(" ")}: ${r.err}`);
    assert.deepEqual(r.loaded, [], args.join(" "));
  }
  Deno.copyFileSync(`${d}/fs.img`, `${d}/dev.img`);
  const r = loadedBy(["e2image", "-I", `${d}/dev.img`, `${d}/out.e2i`]);
  assert.deepEqual([r.code, r.loaded], [0, []], r.err);
});

Deno.test("ntfsclone --metadata on named files loads neither", needs("mkntfs"), () => {
  using dir = tempDir();
  const vol = ntfsFixture("c4k");
  const r = loadedBy(["ntfsclone", "--metadata", "-o", `${dir.path}/meta.img`, vol]);
  assert.deepEqual([r.code, r.loaded], [0, []], r.err);
  // --save-image to a file checks the destination's free space: Deno has no statfs, so that
  // one check loads node:fs.
  const s = loadedBy(["ntfsclone", "-s", "-o", `${dir.path}/vol.img`, vol]);
  assert.deepEqual([s.code, s.loaded], [0, ["node:fs"]], s.err);
});

Deno.test("standard input and output load node:fs, and only then", needs("mkfs.ext4"), () => {
  using dir = tempDir();
  const d = dir.path;
  run("mkfs.ext4", ["-q", "-F", "-N", "256", `${d}/fs.img`, "4M"]);
  const r = loadedBy(["e2image", "-r", "-", `${d}/out.raw`], `${d}/fs.img`);
  assert.deepEqual([r.code, r.loaded], [0, ["node:fs"]], r.err);
  const w = loadedBy(["e2image", "-r", `${d}/fs.img`, "-"]);
  assert.deepEqual([w.code, w.loaded], [0, ["node:fs"]], w.err);
  const c = loadedBy(["copy", "-", `${d}/copy.img`], `${d}/fs.img`);
  assert.deepEqual([c.code, c.loaded], [0, ["node:fs"]], c.err);
  assert.deepEqual(Deno.readFileSync(`${d}/copy.img`), Deno.readFileSync(`${d}/fs.img`));
});

Deno.test(
  "a QCOW2 image with compressed clusters loads node:zlib to read them",
  needs("mkfs.ext4", "qemu-img"),
  () => {
    using dir = tempDir();
    const d = dir.path;
    run("mkfs.ext4", ["-q", "-F", "-N", "256", `${d}/fs.img`, "4M"]);
    run("qemu-img", ["convert", "-c", "-O", "qcow2", `${d}/fs.img`, `${d}/c.qcow2`]);
    const r = loadedBy(["e2image", "-r", `${d}/c.qcow2`, `${d}/back.raw`]);
    assert.deepEqual([r.code, r.loaded], [0, ["node:zlib"]], r.err);
    assert.deepEqual(Deno.readFileSync(`${d}/back.raw`), Deno.readFileSync(`${d}/fs.img`));
  },
);
