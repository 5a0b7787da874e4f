/**
 * A tiny driver for tests that need a separate process: `restore IMAGE|- DEST [file|device]`
 * restores with restoreNtfsclone (stdin when IMAGE is `-`) and prints the result as JSON.
 *
 * @module
 */
import { openSink } from "../../lib/io/file.ts";
import { restoreNtfsclone } from "../../lib/ntfsclone/mod.ts";

if (import.meta.main) {
  const [image, dest, mode] = Deno.args;
  const input = image === "-" ? Deno.stdin : Deno.openSync(image!);
  const sink = openSink(dest!, { mode: mode === "device" ? "existing" : "truncate" });
  const r = restoreNtfsclone(input, sink, { name: image === "-" ? "stdin" : image });
  sink.sync?.();
  sink.close();
  console.log(JSON.stringify({ kind: sink.kind, end: r.end, clusters: r.clusters }));
}
