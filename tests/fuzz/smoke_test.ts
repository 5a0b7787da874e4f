// The seeded short fuzz run of `deno task test` (the long run is `deno task fuzz`): every parser
// and walker, mutated inputs from real images, must end in success or a clean domain error.
import assert from "node:assert/strict";
import { fuzz, mutate, Rng } from "../../scripts/fuzz/engine.ts";
import { TARGETS } from "../../scripts/fuzz/targets.ts";

const CASES = 600;

for (const target of TARGETS) {
  Deno.test(`fuzz smoke: ${target.name} survives ${CASES} mutated inputs`, () => {
    const rep = fuzz(target, { cases: CASES, seed: 20261123, timeLimitMs: 5000 });
    const first = rep.findings[0];
    assert.equal(
      rep.findings.length,
      0,
      first && `${first.kind} at case ${first.index}: ${first.detail}`,
    );
    assert.equal(rep.cases, CASES);
    assert.ok(rep.ok >= 1, "not even the seeds parse");
  });
}

Deno.test("the fuzz engine is deterministic for a seed and finds a planted crash", () => {
  const seed = new Uint8Array(64).fill(1);
  const a = mutate(seed, new Rng(7)), b = mutate(seed, new Rng(7));
  assert.deepEqual(a, b);
  const rep = fuzz({
    name: "planted",
    seeds: () => [seed],
    run: (x) => {
      if (x.length < 64) throw new TypeError("planted bug");
    },
  }, { cases: 200, seed: 1 });
  assert.ok(rep.findings.some((f) => f.kind === "crash" && /planted bug/.test(f.detail)));
});
