/**
 * auditNtfs / scrubNtfs against a real NTFS volume (mkntfs + ntfs-3g) with a planted secret,
 * and against its `ntfsclone -m` metadata image: the audit finds every planted kind; after the
 * scrub the secret is nowhere (UTF-8 or UTF-16LE), the audit is clean, `ntfsfix -n` passes
 * and an ntfs-3g read-only mount lists (and stats) the same tree shape.
 */
import assert from "node:assert/strict";
import { mustRun, needs, sha256File, tempDir } from "../_helpers.ts";
import { openSink, openSource } from "../../lib/io/mod.ts";
import { auditNtfs } from "../../lib/ntfs/audit.ts";
import { scrubNtfs } from "../../lib/ntfs/scrub.ts";
import { NtfsVolume } from "../../lib/ntfs/volume.ts";
import { AttrType, parseAttributes } from "../../lib/ntfs/record.ts";
import type { PrivacyKind } from "../../lib/_internal/privacy.ts";
import { buildNtfs, mountedCensus, ntfsfix, SECRET, SECRET_CORE, secretHits } from "./_fixtures.ts";

const ORACLES = needs("root", "mkntfs", "ntfs-3g", "ntfsclone", "ntfsfix", "python3");

function audit(path: string) {
  const src = openSource(path);
  try {
    return auditNtfs(src);
  } finally {
    src.close();
  }
}

function scrub(path: string, wipeData = true) {
  const img = openSink(path, { mode: "existing" });
  try {
    return scrubNtfs(img, { wipeData });
  } finally {
    img.close();
  }
}

Deno.test({
  name: "scrubNtfs() cleans an NTFS volume and its ntfsclone -m image",
  ...ORACLES,
  fn() {
    using tmp = tempDir("fsp-");
    const fs = buildNtfs(tmp.path, "ntfs");
    const before = mountedCensus(fs, "ntfs");
    const meta = `${tmp.path}/meta.img`;
    mustRun("ntfsclone", ["-q", "-m", "-o", meta, fs]);

    const report = audit(fs);
    assert.equal(report.clean, false);
    const found = new Set(report.findings.map((f) => f.kind));
    const expected: PrivacyKind[] = [
      "names",
      "inline-data",
      "xattr-names",
      "xattr-values",
      "symlink-targets",
      "label",
      "file-data",
    ];
    for (const k of expected) assert.ok(found.has(k), `audit misses ${k}: ${[...found]}`);
    const by = (k: PrivacyKind) => report.findings.find((f) => f.kind === k)!;
    assert.ok(by("names").count > 100);
    assert.ok(by("names").samples.some((s) => s.includes(SECRET)));
    assert.deepEqual(by("label").samples, [SECRET]);
    assert.ok(by("xattr-names").samples.some((s) => s.includes(SECRET)));
    assert.ok(by("symlink-targets").samples.some((s) => s.endsWith(SECRET)));
    assert.equal(by("uuid").severity, "info");

    // ntfsclone -m keeps the names, the stream names and the label.
    const metaFound = new Set(audit(meta).findings.map((f) => f.kind));
    for (const k of ["names", "xattr-names", "label"] as const) assert.ok(metaFound.has(k), k);

    for (const path of [fs, meta]) {
      assert.notDeepEqual(secretHits(path), { utf8: 0, utf16: 0 });
      const twin = `${path}.twin`;
      Deno.copyFileSync(path, twin);
      const r = scrub(path);
      scrub(twin);
      assert.equal(sha256File(twin), sha256File(path), "the scrub is deterministic");
      Deno.removeSync(twin);
      assert.equal(r.orderViolations, 0);
      assert.ok(r.recordsWritten > 100);
      assert.deepEqual(secretHits(path), { utf8: 0, utf16: 0 }, `${SECRET_CORE} left in ${path}`);
      const after = audit(path);
      assert.ok(after.clean, JSON.stringify(after.findings));
      assert.deepEqual(after.findings.map((f) => f.kind), ["uuid"]);
      const fix = ntfsfix(path);
      assert.equal(fix.code, 0, fix.out);
      assert.match(fix.out, /processed successfully/);
      if (path === fs) assert.equal(mountedCensus(path, "ntfs"), before);
      else mountedCensus(path, "ntfs"); // metadata image: symlinks were emptied by ntfsclone
      assert.deepEqual(scrub(path).changed.map((f) => f.kind), ["uuid"]);
    }
  },
});

Deno.test({
  name: "scrubNtfs() keeps user data clusters with wipeData false",
  ...ORACLES,
  fn() {
    using tmp = tempDir("fsp-");
    const fs = buildNtfs(tmp.path, "ntfs");
    scrub(fs, false);
    assert.deepEqual(audit(fs).findings.map((f) => f.kind), ["uuid", "file-data"]);
    assert.equal(ntfsfix(fs).code, 0);
  },
});

Deno.test({
  name: "auditNtfs() reports a $LogFile log page with content; scrubNtfs() empties it to 0xFF",
  ...needs("mkntfs", "ntfsfix"),
  fn() {
    using tmp = tempDir("fsp-");
    const img = `${tmp.path}/l.img`;
    mustRun("truncate", ["-s", "8M", img]);
    mustRun("mkntfs", ["-q", "-F", "-f", img]);
    // Find $LogFile's first run and plant a log record page (RCRD) holding the secret.
    const src = openSource(img);
    const vol = NtfsVolume.open(src);
    const rec = vol.readRecord(2)!;
    const data = parseAttributes(rec.bytes, rec.header).find((a) =>
      a.type === AttrType.DATA && a.name === ""
    )!;
    const at = data.runs[0]!.lcn * vol.clusterSize + 4 * 4096;
    src.close();
    const page = new Uint8Array(4096).fill(0xff);
    page.set(new TextEncoder().encode("RCRD"), 0);
    page.set(new Uint8Array(new Uint16Array([...SECRET].map((c) => c.charCodeAt(0))).buffer), 64);
    const f = Deno.openSync(img, { write: true });
    f.seekSync(at, Deno.SeekMode.Start);
    f.writeSync(page);
    f.close();

    const report = audit(img);
    const journal = report.findings.find((x) => x.kind === "journal")!;
    assert.equal(journal.count, 1);
    assert.match(journal.samples[0]!, new RegExp(SECRET));
    scrub(img);
    assert.deepEqual(secretHits(img), { utf8: 0, utf16: 0 });
    assert.ok(audit(img).clean);
    const back = new Uint8Array(4096);
    const again = openSource(img);
    again.readAt(at, back);
    again.close();
    assert.ok(back.every((b) => b === 0xff));
    assert.equal(ntfsfix(img).code, 0);
  },
});
