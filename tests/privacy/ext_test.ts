/**
 * auditExt / scrubExt against real ext volumes with a planted secret, and against their
 * `e2image -r` metadata images: the audit finds every planted kind; after the scrub the secret
 * is nowhere in the image (UTF-8 or UTF-16LE), the audit is clean, `e2fsck -fn` passes and a
 * read-only mount lists the same tree shape.
 */
import assert from "node:assert/strict";
import { needs, tempDir } from "../_helpers.ts";
import { openSink, openSource } from "../../lib/io/mod.ts";
import { auditExt } from "../../lib/ext/audit.ts";
import { scrubExt } from "../../lib/ext/scrub.ts";
import type { PrivacyKind } from "../../lib/_internal/privacy.ts";
import {
  buildExt,
  e2fsck,
  EXT_RECIPES,
  mountedCensus,
  SECRET,
  SECRET_CORE,
  secretHits,
} from "./_fixtures.ts";
import { mustRun, sha256File } from "../_helpers.ts";

const ORACLES = needs("root", "mkfs.ext4", "mkfs.ext3", "e2image", "e2fsck", "python3");

function kinds(findings: { kind: PrivacyKind }[]): Set<PrivacyKind> {
  return new Set(findings.map((f) => f.kind));
}

function scrubFile(path: string) {
  const img = openSink(path, { mode: "existing" });
  try {
    return scrubExt(img);
  } finally {
    img.close();
  }
}

function audit(path: string) {
  const src = openSource(path);
  try {
    return auditExt(src);
  } finally {
    src.close();
  }
}

for (const recipe of EXT_RECIPES) {
  Deno.test({
    name: `scrubExt() cleans a ${recipe.name} volume and its e2image -r image`,
    ...ORACLES,
    fn() {
      using tmp = tempDir("fsp-");
      const fs = buildExt(tmp.path, recipe, "fs");
      const before = mountedCensus(fs, "ext");
      const meta = `${tmp.path}/meta.raw`;
      mustRun("e2image", ["-r", fs, meta]);

      const report = audit(fs);
      assert.equal(report.clean, false);
      const found = kinds(report.findings);
      const expected: PrivacyKind[] = [
        "names",
        "xattr-names",
        "xattr-values",
        "symlink-targets",
        "journal",
        "label",
        "last-mounted",
        "dir-slack",
        "file-data",
      ];
      if (recipe.inline) expected.push("inline-data");
      for (const k of expected) assert.ok(found.has(k), `audit misses ${k}: ${[...found]}`);
      const names = report.findings.find((f) => f.kind === "names")!;
      assert.ok(names.samples.some((s) => s.includes(SECRET)), names.samples.join(","));
      const label = report.findings.find((f) => f.kind === "label")!;
      assert.deepEqual(label.samples, [SECRET.slice(0, 16)]);
      assert.ok(
        report.findings.find((f) => f.kind === "last-mounted")!.samples[0]!.includes(SECRET),
      );
      const uuid = report.findings.find((f) => f.kind === "uuid")!;
      assert.equal(uuid.severity, "info");

      // The metadata image holds the same leaks except the file data.
      const metaKinds = kinds(audit(meta).findings);
      for (const k of expected.filter((k) => k !== "file-data")) {
        assert.ok(metaKinds.has(k), `metadata image audit misses ${k}`);
      }
      assert.ok(!metaKinds.has("file-data"));

      for (const path of [fs, meta]) {
        assert.notDeepEqual(secretHits(path), { utf8: 0, utf16: 0 });
        const twin = `${path}.twin`;
        Deno.copyFileSync(path, twin);
        const r = scrubFile(path);
        scrubFile(twin);
        assert.equal(sha256File(twin), sha256File(path), "the scrub is deterministic");
        Deno.removeSync(twin);
        assert.ok(r.changed.some((f) => f.kind === "names" && f.count > 100));
        assert.equal(r.nameCollisions, 0);
        assert.ok(r.htreeConverted >= 1, "the 150-entry directory is an htree");
        assert.deepEqual(secretHits(path), { utf8: 0, utf16: 0 }, `${SECRET_CORE} left in ${path}`);
        const after = audit(path);
        assert.ok(after.clean, JSON.stringify(after.findings));
        assert.deepEqual(after.findings.map((f) => f.kind), ["uuid"]);
        const fsck = e2fsck(path);
        assert.equal(fsck.code, 0, fsck.out);
        assert.equal(mountedCensus(path, "ext"), before);
        // A second scrub finds nothing more to do.
        assert.deepEqual(scrubFile(path).changed.map((f) => f.kind), ["uuid"]);
      }
    },
  });
}

Deno.test({
  name: "scrubExt() keeps file data with wipeData false and still passes e2fsck",
  ...ORACLES,
  fn() {
    using tmp = tempDir("fsp-");
    const fs = buildExt(tmp.path, EXT_RECIPES[2]!, "fs");
    const img = openSink(fs, { mode: "existing" });
    try {
      scrubExt(img, { wipeData: false });
    } finally {
      img.close();
    }
    const after = audit(fs);
    assert.deepEqual(after.findings.map((f) => f.kind), ["uuid", "file-data"]);
    assert.equal(e2fsck(fs).code, 0);
  },
});

Deno.test({
  name: "auditExt() shows what e2image -rs still leaks (all but block-directory names and slack)",
  ...ORACLES,
  fn() {
    using tmp = tempDir("fsp-");
    const fs = buildExt(tmp.path, EXT_RECIPES[0]!, "fs");
    const scrambled = `${tmp.path}/s.raw`;
    mustRun("e2image", ["-rs", fs, scrambled]);
    const found = kinds(audit(scrambled).findings);
    for (
      const k of [
        "inline-data",
        "xattr-names",
        "xattr-values",
        "symlink-targets",
        "journal",
        "label",
        "last-mounted",
      ] as const
    ) assert.ok(found.has(k), `e2image -rs keeps ${k}`);
    assert.ok(!found.has("dir-slack"), [...found].join(","));
    // e2image -s scrambles directory blocks only: names in inline-data directories stay.
    const names = audit(scrambled).findings.find((f) => f.kind === "names")!;
    assert.deepEqual(names.samples, [`deep-${SECRET}.txt`]);
    assert.ok(secretHits(scrambled).utf8 > 0);
  },
});
