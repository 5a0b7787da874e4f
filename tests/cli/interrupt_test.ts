import assert from "node:assert/strict";
import { MAIN, needs, run, tempDir } from "../_helpers.ts";
import { MemorySource, openSink, type Sink } from "../../lib/io/mod.ts";
import { writeQcow2 } from "../../lib/qcow2/mod.ts";

/** A sparse 4 GiB source with a MiB of data every 64 MiB: slow enough to interrupt. */
function bigSource(dir: string): string {
  const p = `${dir}/big.img`;
  const f = Deno.openSync(p, { write: true, create: true });
  const chunk = new Uint8Array(1 << 20).fill(0x5a);
  for (let off = 0; off < 4 * 2 ** 30; off += 64 << 20) {
    f.seekSync(off, Deno.SeekMode.Start);
    f.writeSync(chunk);
  }
  f.truncateSync(4 * 2 ** 30);
  f.close();
  return p;
}

for (const [signal, status] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`${signal} ends a copy promptly with status ${status}, no trace, and an output shorter than the image`, async () => {
    using d = tempDir();
    const src = bigSource(d.path), out = `${d.path}/out.img`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        `--allow-read=${src}`,
        `--allow-write=${out}`,
        MAIN,
        "copy",
        src,
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Wait until the copy has started writing, then interrupt it.
    for (let i = 0; i < 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      try {
        if (Deno.statSync(out).size > 0) break;
      } catch {
        // not created yet
      }
    }
    const t0 = performance.now();
    child.kill(signal);
    const r = await child.output();
    assert.ok(performance.now() - t0 < 2000, "did not stop promptly");
    assert.equal(r.code, status);
    assert.equal(new TextDecoder().decode(r.stderr), "");
    // The final length is set only at the end: a cut-short image is visibly short.
    assert.ok(Deno.statSync(out).size < Deno.statSync(src).size);
  });
}

Deno.test("a QCOW2 image cut short by a crash has no valid header", needs("qemu-img"), () => {
  using d = tempDir();
  const raw = new Uint8Array(8 << 20);
  for (let i = 0; i < raw.length; i += 4096) raw[i] = 1 + (i >> 12) % 250;
  const path = `${d.path}/cut.qcow2`;
  const inner = openSink(path, { mode: "create-new" });
  let budget = 3 << 20; // the crash happens after 3 MiB
  const dying: Sink = {
    name: inner.name,
    kind: inner.kind,
    get size() {
      return inner.size;
    },
    writeAt(offset, data) {
      if ((budget -= data.length) < 0) throw new Error("simulated crash");
      inner.writeAt(offset, data);
    },
    truncate: (n) => inner.truncate(n),
    close: () => inner.close(),
  };
  assert.throws(
    () =>
      writeQcow2(
        new MemorySource(raw),
        dying,
        [{ offset: 0, length: raw.length }],
        {
          virtualSize: raw.length,
          clusterSize: 4096,
          bufferSize: 1 << 20,
        } as Parameters<typeof writeQcow2>[3],
      ),
    /simulated crash/,
  );
  inner.close();
  assert.ok(Deno.statSync(path).size > 0, "nothing was written before the crash");
  assert.notEqual(run("qemu-img", ["check", path]).code, 0);
});
