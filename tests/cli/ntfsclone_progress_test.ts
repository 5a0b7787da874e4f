/** ntfsclone's number formats and progress lines, reproduced exactly (pure, no permissions). */
import assert from "node:assert/strict";
import { BufferWriter } from "../../lib/cli/context.ts";
import { megabytes, NtfsProgress, printfFixed } from "../../lib/cli/ntfsclone_progress.ts";
import { diskUsageLine } from "../../lib/cli/ntfsclone.ts";

Deno.test({
  name: "printfFixed() rounds the exact binary value half to even, as glibc's printf",
  permissions: "none",
  fn() {
    assert.equal(printfFixed(12.125, 2), "12.12"); // exact tie: to even
    assert.equal(printfFixed(12.375, 2), "12.38");
    assert.equal(printfFixed(0.125, 2), "0.12");
    assert.equal(printfFixed(Math.fround(100 / 3), 2), "33.33");
    assert.equal(printfFixed(99.995, 2), "100.00"); // 99.99500000000000454… in binary
    assert.equal(printfFixed(2.5, 0), "2");
    assert.equal(printfFixed(3.5, 0), "4");
    assert.equal(printfFixed(5.05, 1), "5.0"); // 5.0499999… in binary
    assert.equal(printfFixed(0, 2), "0.00");
  },
});

Deno.test({
  name: "NtfsProgress prints every 100th count and a final 100.00 line, in float32",
  permissions: "none",
  fn() {
    const out = new BufferWriter();
    const p = new NtfsProgress(out, 250, false);
    for (let i = 1; i <= 250; i++) p.update(i);
    assert.equal(
      out.text,
      " 40.00 percent completed\r 80.00 percent completed\r100.00 percent completed\n",
    );
    // Advancing in batches prints the same lines.
    const b = new BufferWriter();
    const q = new NtfsProgress(b, 250, false);
    q.advanceTo(7);
    q.advanceTo(199);
    q.advanceTo(250);
    assert.equal(b.text, out.text);
    // Quiet prints nothing; a counter that never reaches stop prints no 100% line.
    const c = new BufferWriter();
    new NtfsProgress(c, 250, true).advanceTo(250);
    assert.equal(c.text, "");
    const d = new BufferWriter();
    new NtfsProgress(d, 1001, false).advanceTo(1000);
    assert.ok(!d.text.includes("100.00"));
    assert.ok(d.text.endsWith(" 99.90 percent completed\r"));
  },
});

Deno.test({
  name: "the Space in use line: MB rounded up, float32 percentage, three trailing spaces",
  permissions: "none",
  fn() {
    assert.equal(megabytes(1), 1);
    assert.equal(megabytes(1_000_000), 1);
    assert.equal(megabytes(1_000_001), 2);
    assert.equal(diskUsageLine("", 4096, 4095, 932), "Space in use       : 4 MB (22.8%)   \n");
    assert.equal(
      diskUsageLine("    ", 4096, 16383, 831),
      "Space in use           : 4 MB (5.1%)   \n",
    );
  },
});
