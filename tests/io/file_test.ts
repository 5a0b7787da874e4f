import assert from "node:assert/strict";
import {
  fdHandle,
  FdSink,
  FdSource,
  fileHandle,
  openFileHandle,
  openSink,
  openSource,
} from "../../lib/io/mod.ts";
import { ReadError, WriteError } from "../../lib/errors.ts";
import { needs, ROOT, run, tempDir } from "../_helpers.ts";

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

Deno.test("openSource() reads a file positionally, short only at the end, and caches its stat", () => {
  using dir = tempDir();
  const p = `${dir.path}/a.img`;
  const data = pattern(10000);
  Deno.writeFileSync(p, data);
  using src = openSource(p);
  const st = Deno.statSync(p);
  assert.deepEqual(
    [src.kind, src.size, src.info.kind, src.info.dev, src.info.ino],
    ["file", 10000, "file", st.dev, st.ino],
  );
  const buf = new Uint8Array(4096);
  assert.equal(src.readAt(8192, buf), 10000 - 8192);
  assert.deepEqual(buf.subarray(0, 10000 - 8192), data.subarray(8192));
  assert.equal(src.readAt(100, buf), 4096);
  assert.deepEqual(buf, data.subarray(100, 4196));
  assert.equal(src.readAt(20000, buf), 0);
});

Deno.test("openSource() names the path and the reason of a failed open, as one line", () => {
  using dir = tempDir();
  assert.throws(() => openSource(`${dir.path}/missing`), (e) => {
    assert.ok(e instanceof ReadError);
    assert.equal(e.message, `Cannot open ${dir.path}/missing: No such file or directory`);
    assert.equal((e.cause as { code?: string }).code, "ENOENT");
    return true;
  });
  assert.throws(() => openSource(dir.path), /Is a directory/);
});

Deno.test("openSink() modes: create-new refuses an existing file, truncate empties it, created says which", () => {
  using dir = tempDir();
  const p = `${dir.path}/o.img`;
  {
    using o = openSink(p, { mode: "create-new" });
    assert.deepEqual([o.kind, o.created, o.size], ["file", true, 0]);
    o.writeAt(1 << 20, pattern(100));
    assert.equal(o.size, (1 << 20) + 100);
    const back = new Uint8Array(100);
    assert.equal(o.readAt(1 << 20, back), 100);
    assert.deepEqual(back, pattern(100));
    o.truncate(4096);
    assert.equal(o.size, 4096);
    o.sync();
  }
  assert.equal(Deno.statSync(p).size, 4096);
  assert.throws(() => openSink(p, { mode: "create-new" }), (e) => {
    assert.ok(e instanceof WriteError);
    assert.equal((e.cause as { code?: string }).code, "EEXIST");
    return true;
  });
  {
    using o = openSink(p, { mode: "create" });
    assert.deepEqual([o.created, o.size], [false, 4096]);
  }
  {
    using o = openSink(p, { mode: "truncate" });
    assert.deepEqual([o.created, o.size], [false, 0]);
  }
  assert.throws(() => openSink(`${dir.path}/nope`, { mode: "existing" }), WriteError);
});

Deno.test(
  "FdSink over a FIFO is a stream: writes in order only, no truncate",
  needs("mkfifo"),
  async () => {
    using dir = tempDir();
    const fifo = `${dir.path}/p`;
    run("mkfifo", [fifo]);
    // A reader that keeps the FIFO open so the open for writing does not block.
    const reader = new Deno.Command("cat", { args: [fifo], stdout: "piped" }).spawn();
    const sink = openSink(fifo, { mode: "existing" });
    assert.equal(sink.kind, "stream");
    sink.writeAt(0, pattern(1000));
    sink.writeAt(1000, pattern(24));
    assert.throws(() => sink.writeAt(5000, pattern(1)), RangeError);
    assert.throws(() => sink.truncate(0), TypeError);
    sink.close();
    const out = await reader.output();
    assert.equal(out.stdout.length, 1024);
    assert.deepEqual(out.stdout.subarray(1000), pattern(24));
  },
);

Deno.test("Deno.FsFile and node:fs descriptor handles see the same file the same way", () => {
  using dir = tempDir();
  const p = `${dir.path}/a.img`;
  Deno.writeFileSync(p, pattern(5000));
  const a = fileHandle(Deno.openSync(p, { read: true, write: true }));
  const b = openFileHandle(p, { write: true }); // write-only: through node:fs
  try {
    assert.deepEqual(a.info, b.info);
    assert.equal(b.write(pattern(10), 4990), 10);
    const buf = new Uint8Array(20);
    assert.equal(a.read(buf, 4990), 10);
    assert.deepEqual(buf.subarray(0, 10), pattern(10));
  } finally {
    a.close();
    b.close();
  }
  const s = new FdSource(openFileHandle(p, { read: true }), p);
  assert.equal(s.size, 5000);
  s.close();
  assert.throws(() => new FdSink(fdHandle(-1), "bad"));
});

Deno.test("FdSink.syncDataAsync() flushes a file (for WritebackSink)", async () => {
  using dir = tempDir();
  using o = openSink(`${dir.path}/o.img`);
  o.writeAt(0, pattern(4096));
  await o.syncDataAsync();
  assert.equal(Deno.statSync(`${dir.path}/o.img`).size, 4096);
});

Deno.test("file sinks and sources keep working after every permission is revoked", () => {
  using dir = tempDir();
  const src = `${dir.path}/in.img`, dst = `${dir.path}/out.img`;
  Deno.writeFileSync(src, pattern(8192));
  const script = `
    import { openSink, openSource } from "${ROOT}/lib/io/mod.ts";
    const s = openSource(${JSON.stringify(src)});
    const o = openSink(${JSON.stringify(dst)}, { mode: "create-new" });
    for (const name of ["read", "write", "env", "run", "sys", "net", "ffi"]) {
      Deno.permissions.revokeSync({ name });
    }
    const buf = new Uint8Array(8192);
    s.readAt(0, buf);
    o.writeAt(0, buf);
    o.truncate(16384);
    o.sync();
    await o.syncDataAsync();
    console.log(o.kind, o.size, Deno.permissions.querySync({ name: "write" }).state);
  `;
  const file = `${dir.path}/probe.ts`;
  Deno.writeTextFileSync(file, script);
  for (const flags of [["-A"], [`--allow-read=${src},${file}`, `--allow-write=${dst}`]]) {
    try {
      Deno.removeSync(dst);
    } catch {
      // first round
    }
    const r = run(Deno.execPath(), ["run", "--no-prompt", ...flags, file]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "file 16384 prompt\n");
    const got = Deno.readFileSync(dst);
    assert.deepEqual(got.subarray(0, 8192), pattern(8192));
    assert.equal(got.length, 16384);
  }
});
