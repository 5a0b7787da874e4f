/**
 * {@linkcode auditExt}: what an ext2/3/4 image (a raw e2image, a metadata image or a whole
 * file system) still holds that could identify people or data — names, deleted entries,
 * inline data, xattrs, symlink targets, journal blocks, the label and last-mounted path, slack
 * bytes, deleted inodes and file data blocks.
 *
 * @module
 */
import type { Source } from "../io/types.ts";
import { FindingCollector, type PrivacyFinding } from "../_internal/privacy.ts";
import { ExtVolume } from "./volume.ts";
import { ExtPrivacyWalk } from "./_privacy_engine.ts";

export type { PrivacyFinding, PrivacyKind, PrivacySeverity } from "../_internal/privacy.ts";
export type { Source };

/** Options of {@linkcode auditExt}. */
export interface AuditExtOptions {
  /** Also read the blocks the bitmaps mark free (default false; slow on big sparse images). */
  freeSpace?: boolean;
}

/** The result of {@linkcode auditExt}. */
export interface ExtAudit {
  /** "ext". */
  format: "ext";
  /** The findings, `leak` and `info`, in a stable order. */
  findings: PrivacyFinding[];
  /** True when no `leak` finding was made (UUIDs alone leave an image clean). */
  clean: boolean;
}

/**
 * Audits the ext file system (or raw metadata image) in `source`. Reads only metadata plus
 * the data blocks of regular files (to tell whether the image carries file contents).
 * Throws {@linkcode CorruptImageError} when the superblock or descriptors cannot be read.
 *
 * @example
 * ```ts ignore
 * import { auditExt } from "./audit.ts";
 * import { openSource } from "../io/mod.ts";
 * const report = auditExt(openSource("meta.raw"));
 * for (const f of report.findings) console.log(f.kind, f.count, f.samples);
 * ```
 */
export function auditExt(source: Source, options: AuditExtOptions = {}): ExtAudit {
  const vol = ExtVolume.open(source);
  const findings = new FindingCollector();
  new ExtPrivacyWalk(vol, null, findings, options).run();
  return { format: "ext", findings: findings.findings(), clean: findings.leaks() === 0 };
}
