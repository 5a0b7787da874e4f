import assert from "node:assert/strict";
import { runFsimage, tempDir } from "../_helpers.ts";

function image(dir: string): string {
  const p = `${dir}/disk.img`;
  const b = new Uint8Array(1 << 20);
  for (let i = 0; i < b.length; i += 4096) b[i] = 1 + (i >> 12);
  Deno.writeFileSync(p, b);
  return p;
}

Deno.test("a run with only --allow-read=SRC --allow-write=DST copies an image file", () => {
  using d = tempDir();
  const src = image(d.path), dst = `${d.path}/out.img`;
  const r = runFsimage(["copy", src, dst], {
    flags: [`--allow-read=${src}`, `--allow-write=${dst}`],
  });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(Deno.readFileSync(dst), Deno.readFileSync(src));
});

Deno.test("without the write permission: one line naming the flag, exit 1, no trace, no file", () => {
  using d = tempDir();
  const src = image(d.path), dst = `${d.path}/out.img`;
  const r = runFsimage(["copy", src, dst], { flags: [`--allow-read=${src}`] });
  assert.equal(r.code, 1);
  assert.equal(
    r.err,
    `copy: missing permission to write ${dst}: run again with --allow-write=${dst}\n`,
  );
  assert.throws(() => Deno.statSync(dst));
});

Deno.test("without the read permission: one line naming the flag, exit 1", () => {
  using d = tempDir();
  const src = image(d.path), dst = `${d.path}/out.img`;
  const r = runFsimage(["copy", src, dst], { flags: [`--allow-write=${dst}`] });
  assert.equal(r.code, 1);
  assert.equal(
    r.err,
    `copy: missing permission to read ${src}: run again with --allow-read=${src}\n`,
  );
});

Deno.test("a device path without -A is explained, not attempted", () => {
  using d = tempDir();
  const r = runFsimage(["copy", "/dev/zero", `${d.path}/o`], {
    flags: ["--allow-read", "--allow-write"],
  });
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /^copy: \/dev\/zero is a device or kernel file: Deno opens those only with -A .*< \/dev\/zero/,
  );
  assert.equal(r.err.split("\n").length, 2);
});

Deno.test("stdin redirected from a file and stdout to a file need no permission at all", () => {
  using d = tempDir();
  const src = image(d.path);
  const r = runFsimage(["copy", "-", "-"], { flags: [], stdin: src });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.stdout, Deno.readFileSync(src));
});

Deno.test("an -A run holds no permission once its files are open", () => {
  using d = tempDir();
  const src = image(d.path), dst = `${d.path}/out.img`;
  const r = runFsimage(["--debug", "copy", src, dst], { flags: ["-A"] });
  assert.equal(r.code, 0, r.err);
  const line = r.err.split("\n").find((l) => l.includes("permissions after opening"));
  assert.equal(
    line,
    "copy: permissions after opening: read=prompt write=prompt net=prompt env=prompt sys=prompt run=prompt ffi=prompt import=prompt",
  );
  assert.deepEqual(Deno.readFileSync(dst), Deno.readFileSync(src));
});

Deno.test("after dropping, a new open fails while the open handles keep working", () => {
  using d = tempDir();
  const src = image(d.path);
  const probe = `
    import { dropAllPermissions } from "${
    new URL("../../lib/cli/permissions.ts", import.meta.url).href
  }";
    import { openSource } from "${new URL("../../lib/io/mod.ts", import.meta.url).href}";
    const s = openSource(${JSON.stringify(src)});
    dropAllPermissions();
    const b = new Uint8Array(1);
    s.readAt(4096, b);
    let reopened = "yes";
    try { Deno.openSync(${JSON.stringify(src)}); } catch (e) { reopened = e.name; }
    console.log(b[0], reopened);
  `;
  const cmd = new Deno.Command(Deno.execPath(), { args: ["eval", "--no-prompt", "-A", probe] })
    .outputSync();
  assert.equal(
    new TextDecoder().decode(cmd.stdout).trim(),
    "2 NotCapable",
    new TextDecoder().decode(cmd.stderr),
  );
});

Deno.test("importing and using the library needs no permission", () => {
  using d = tempDir();
  const mod = new URL("../../mod.ts", import.meta.url).href;
  const script = `${d.path}/use.ts`;
  Deno.writeTextFileSync(
    script,
    `import * as m from "${mod}";
    const out = new m.MemorySink();
    m.copyExtents(new m.MemorySource(new Uint8Array(8192).fill(3)), out, [{ offset: 4096, length: 4096 }]);
    console.log(out.size, out.bytes()[4096]);`,
  );
  // deno run without any flag: an env, read or sys access at import time would throw.
  const cmd = new Deno.Command(Deno.execPath(), { args: ["run", "--no-prompt", script] })
    .outputSync();
  assert.equal(
    new TextDecoder().decode(cmd.stdout).trim(),
    "8192 3",
    new TextDecoder().decode(cmd.stderr),
  );
});
