/**
 * Throughput of the QCOW2 writer and reader against `qemu-img convert`, on a ~1 GiB raw image
 * (half data, half holes and zero runs). A report, not a test: run by hand with
 *
 * ```sh
 * deno run -A tests/qcow2/_bench.ts [/tmp/qcow2-bench]
 * ```
 *
 * @module
 */
import { copyExtents, openSink, openSource } from "../../lib/io/mod.ts";
import { Qcow2Reader, writeQcow2 } from "../../lib/qcow2/mod.ts";
import { mustRun, sha256File } from "../_helpers.ts";
import { rng } from "./_util.ts";

const dir = Deno.args[0] ?? "/tmp/qcow2-bench";
Deno.mkdirSync(dir, { recursive: true });
const SIZE = 1024 * 1024 * 1024;
const raw = `${dir}/src.raw`;

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

function makeSource(): void {
  using out = openSink(raw, { mode: "truncate" });
  const next = rng(42);
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i += 4) {
    new DataView(chunk.buffer).setUint32(i, next());
  }
  // 1 MiB pieces: data, zeros (written), hole, data with a zero 4 KiB every 64 KiB …
  for (let mb = 0; mb < SIZE >> 20; mb++) {
    const k = mb % 4;
    if (k === 0 || k === 3) {
      chunk[mb & 0xfff] = mb & 0xff;
      if (k === 3) { for (let o = 0; o < chunk.length; o += 65536) chunk.fill(0, o, o + 4096); }
      out.writeAt(mb << 20, chunk);
    } else if (k === 1) out.writeAt(mb << 20, new Uint8Array(1 << 20));
  }
  out.truncate?.(SIZE);
}

makeSource();
mustRun("sync", []);
const rows: string[] = [];
for (const cs of [4096, 65536]) {
  // Writer.
  const ours = `${dir}/ours-${cs}.qcow2`, theirs = `${dir}/qemu-${cs}.qcow2`;
  try {
    Deno.removeSync(ours);
  } catch { /* absent */ }
  const [, tw] = time(() => {
    using src = openSource(raw);
    using out = openSink(ours, { mode: "truncate" });
    writeQcow2(src, out, [{ offset: 0, length: SIZE }], { virtualSize: SIZE, clusterSize: cs });
  });
  const [, tq] = time(() =>
    mustRun("qemu-img", [
      "convert",
      "-f",
      "raw",
      "-O",
      "qcow2",
      "-o",
      `cluster_size=${cs}`,
      raw,
      theirs,
    ])
  );
  mustRun("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", raw, ours]);
  rows.push(
    `write  cs=${cs}: ours ${tw.toFixed(2)} s, qemu-img convert -O qcow2 ${
      tq.toFixed(2)
    } s, ratio ${(tq / tw).toFixed(2)}x`,
  );
  // Reader: QCOW2 → raw.
  const back = `${dir}/back-${cs}.raw`, qback = `${dir}/qback-${cs}.raw`;
  const [, tr] = time(() => {
    using src = openSource(theirs);
    const r = Qcow2Reader.open(src);
    using out = openSink(back, { mode: "truncate" });
    copyExtents(r, out, r.allocatedExtents(), { size: r.size, blockSize: cs });
  });
  const [, tqr] = time(() => mustRun("qemu-img", ["convert", "-O", "raw", theirs, qback]));
  if (sha256File(back) !== sha256File(raw)) throw new Error("reader output differs");
  rows.push(
    `read   cs=${cs}: ours ${tr.toFixed(2)} s, qemu-img convert -O raw ${tqr.toFixed(2)} s, ratio ${
      (tqr / tr).toFixed(2)
    }x`,
  );
}
console.log(rows.join("\n"));
