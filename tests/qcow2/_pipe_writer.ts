/**
 * Test helper: writes `<src>` (all of it) as QCOW2 with `<clusterSize>` to standard output, so
 * tests can check what {@linkcode writeQcow2} sends down a real pipe.
 *
 * Usage: `deno run --allow-read --allow-write _pipe_writer.ts <src> <clusterSize>`
 *
 * @module
 */
import { openSource, stdoutSink } from "../../lib/io/mod.ts";
import { writeQcow2 } from "../../lib/qcow2/mod.ts";

const [src, cs] = Deno.args;
using source = openSource(src!);
const sink = stdoutSink();
if (sink.kind !== "stream") throw new Error(`stdout is a ${sink.kind}, expected a pipe`);
writeQcow2(source, sink, [{ offset: 0, length: source.size }], {
  virtualSize: source.size,
  clusterSize: Number(cs),
  bufferSize: 1 << 20,
});
