import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { readFixture, sha256 } from "../_helpers.ts";
import { committedSums, extCommittedFixtureNames } from "./_fixtures.ts";

Deno.test({
  name: "committed ext fixtures match SHA256SUMS and cover the reproducible matrix",
  permissions: { read: true },
  fn() {
    const sums = committedSums();
    assertEquals([...sums.keys()].sort(), extCommittedFixtureNames.map((n) => `${n}.img`).sort());
    for (const [file, sum] of sums) assertEquals(sha256(readFixture(`ext/${file}.gz`)), sum, file);
  },
});
