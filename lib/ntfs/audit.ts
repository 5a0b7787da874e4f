/**
 * {@linkcode auditNtfs}: what an NTFS image (an `ntfsclone -m` metadata image or a whole
 * volume) still holds that could identify people or data — file names (in $FILE_NAME
 * attributes and $I30 indexes), deleted MFT records and stale index entries, resident file
 * contents, named streams (ntfs-3g's user xattrs), symlink targets, $LogFile pages, the
 * label, slack bytes and user data clusters.
 *
 * @module
 */
import type { Source } from "../io/types.ts";
import { FindingCollector, type PrivacyFinding } from "../_internal/privacy.ts";
import { NtfsVolume } from "./volume.ts";
import { NtfsPrivacyWalk } from "./_privacy_engine.ts";

export type { PrivacyFinding, PrivacyKind, PrivacySeverity } from "../_internal/privacy.ts";
export type { Source };

/** Options of {@linkcode auditNtfs}. */
export interface AuditNtfsOptions {
  /** Also read the clusters $Bitmap marks free (default false; slow on big sparse images). */
  freeSpace?: boolean;
}

/** The result of {@linkcode auditNtfs}. */
export interface NtfsAudit {
  /** "ntfs". */
  format: "ntfs";
  /** The findings, `leak` and `info`, in a stable order. */
  findings: PrivacyFinding[];
  /** True when no `leak` finding was made (the serial number alone leaves an image clean). */
  clean: boolean;
}

/**
 * Audits the NTFS volume (or metadata image) in `source`. Throws
 * {@linkcode CorruptImageError} when the volume cannot be opened.
 *
 * @example
 * ```ts ignore
 * import { auditNtfs } from "./audit.ts";
 * import { openSource } from "../io/mod.ts";
 * const report = auditNtfs(openSource("meta.img"));
 * console.log(report.clean, report.findings.map((f) => f.kind));
 * ```
 */
export function auditNtfs(source: Source, options: AuditNtfsOptions = {}): NtfsAudit {
  const vol = NtfsVolume.open(source);
  const findings = new FindingCollector();
  new NtfsPrivacyWalk(vol, null, findings, options).run();
  return { format: "ntfs", findings: findings.findings(), clean: findings.leaks() === 0 };
}
