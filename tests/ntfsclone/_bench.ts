/**
 * Throughput of saveImage / restoreNtfsclone against the real ntfsclone (a report, not a test):
 *
 *   deno run -A tests/ntfsclone/_bench.ts VOLUME SCRATCH_DIR
 *
 * VOLUME is an NTFS volume file (e.g. 1 GiB, mostly full). Each case runs three times on a warm
 * page cache; the best time is reported. Writes to a file are dominated by the host's writeback,
 * so the same work is also timed into /dev/null (a stream: restores then zero-fill the gaps). Our save is given the used-cluster list decoded from the real
 * image (the NTFS walk belongs to lib/ntfs), so it times the image encoding and I/O only.
 *
 * @module
 */
import { openSink, openSource } from "../../lib/io/file.ts";
import { listNtfscloneClusters, restoreNtfsclone, saveImage } from "../../lib/ntfsclone/mod.ts";
import { sha256File } from "../_helpers.ts";

function time(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

function best(f: () => void): number {
  return Math.min(time(f), time(f), time(f));
}

function sh(cmd: string, args: string[]): void {
  const o = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync();
  if (!o.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
}

if (import.meta.main) {
  const [vol, dir] = Deno.args;
  if (!vol || !dir) throw new Error("usage: _bench.ts VOLUME SCRATCH_DIR");
  const realImg = `${dir}/real.nc`, oursImg = `${dir}/ours.nc`;
  const realRaw = `${dir}/real.raw`, oursRaw = `${dir}/ours.raw`;
  const tRealSave = best(() => sh("ntfsclone", ["-q", "-s", "-O", realImg, vol]));
  const list = (() => {
    using f = Deno.openSync(realImg);
    return listNtfscloneClusters(f);
  })();
  const tOursSave = best(() => {
    const src = openSource(vol);
    const sink = openSink(oursImg, { mode: "truncate" });
    saveImage(src, sink, list.used, list.header);
    sink.close();
    src.close();
  });
  const tRealRestore = best(() => sh("ntfsclone", ["-q", "-r", "-O", realRaw, realImg]));
  const tOursRestore = best(() => {
    using f = Deno.openSync(realImg);
    const sink = openSink(oursRaw, { mode: "truncate" });
    restoreNtfsclone(f, sink);
    sink.close();
  });
  const tRealSaveNull = best(() => sh("ntfsclone", ["-q", "-s", "-O", "/dev/null", vol]));
  const tOursSaveNull = best(() => {
    const src = openSource(vol);
    const sink = openSink("/dev/null", { mode: "existing" });
    saveImage(src, sink, list.used, list.header);
    sink.close();
    src.close();
  });
  const tRealRestoreNull = best(() =>
    sh("sh", ["-c", `ntfsclone -q -r -o - "$1" > /dev/null`, "sh", realImg])
  );
  const tOursRestoreNull = best(() => {
    using f = Deno.openSync(realImg);
    const sink = openSink("/dev/null", { mode: "existing" });
    restoreNtfsclone(f, sink);
    sink.close();
  });
  const size = Deno.statSync(realImg).size;
  const mbps = (ms: number) => (size / 1e6 / (ms / 1000)).toFixed(0);
  const line = (what: string, real: number, ours: number) =>
    console.log(
      `${what.padEnd(24)} ntfsclone ${real.toFixed(0).padStart(6)} ms (${
        mbps(real).padStart(5)
      } MB/s)   ours ${ours.toFixed(0).padStart(6)} ms (${mbps(ours).padStart(5)} MB/s)   ${
        (real / ours).toFixed(2)
      }x`,
    );
  console.log(`image ${size} bytes (MB/s are image bytes per second)`);
  console.log(`identical image: ${sha256File(realImg) === sha256File(oursImg)}`);
  console.log(`identical restore: ${sha256File(realRaw) === sha256File(oursRaw)}`);
  line("save to a file", tRealSave, tOursSave);
  line("save to /dev/null", tRealSaveNull, tOursSaveNull);
  line("restore to a file", tRealRestore, tOursRestore);
  line("restore to a stream", tRealRestoreNull, tOursRestoreNull);
}
