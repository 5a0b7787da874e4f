// Run with -A by sparse_test.ts: writes the extents given as JSON to a block device through
// openSink/copyExtents and prints what the adapters saw.
import { copyExtents, MemorySource, openSink, openSource } from "../../lib/io/mod.ts";

const [dev, srcPath, extentsJson] = Deno.args as [string, string, string];
const src = new MemorySource(Deno.readFileSync(srcPath));
const sink = openSink(dev, { mode: "existing" });
copyExtents(src, sink, JSON.parse(extentsJson), { size: src.size });
sink.sync();
sink.close();
const s = openSource(dev);
console.log(
  JSON.stringify({
    sinkKind: sink.kind,
    sinkSize: sink.size,
    sourceKind: s.kind,
    sourceSize: s.size,
  }),
);
s.close();
