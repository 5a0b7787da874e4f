/**
 * {@linkcode scrubNtfs}: removes, in place, what {@linkcode auditNtfs} finds in an NTFS image:
 * names in $FILE_NAME attributes and $I30 index entries are replaced by names of the same
 * length that keep every directory's collation order (so lookups still work), resident user
 * data and named streams are wiped (stream names scrambled), symlink targets become `x…x` of
 * the same length, deleted records, record and index slack are zeroed, $LogFile log pages are
 * emptied (0xFF, as ntfsfix leaves them), the label is cleared and (unless disabled) user data
 * clusters are zeroed. Fixups are redone and $MFTMirr is kept equal to $MFT.
 *
 * @module
 */
import type { Source } from "../io/types.ts";
import { FindingCollector, type PrivacyFinding } from "../_internal/privacy.ts";
import { NtfsVolume } from "./volume.ts";
import { NtfsPrivacyWalk, type NtfsScrubCounts, type PrivacyWriter } from "./_privacy_engine.ts";

export type { NtfsScrubCounts, PrivacyWriter } from "./_privacy_engine.ts";
export type { PrivacyFinding, PrivacyKind, PrivacySeverity } from "../_internal/privacy.ts";
export type { Source };

/** Options of {@linkcode scrubNtfs}. */
export interface ScrubNtfsOptions {
  /** Also zero the non-resident data of user files (default true). */
  wipeData?: boolean;
  /** Also zero the unallocated blocks that are not zero (default false). */
  freeSpace?: boolean;
}

/** What {@linkcode scrubNtfs} changed. */
export interface NtfsScrubResult extends NtfsScrubCounts {
  /** "ntfs". */
  format: "ntfs";
  /** What was found and rewritten, per kind (the serial number is reported and kept). */
  changed: PrivacyFinding[];
}

/**
 * Scrubs the NTFS image `image` in place (read as a {@linkcode Source}, written back through
 * `writeAt`).
 *
 * @example
 * ```ts ignore
 * import { scrubNtfs } from "./scrub.ts";
 * import { openSink } from "../io/mod.ts";
 * const r = scrubNtfs(openSink("ntfs.img", { mode: "existing" }) as never);
 * console.log(r.recordsWritten);
 * ```
 */
export function scrubNtfs(
  image: Source & PrivacyWriter,
  options: ScrubNtfsOptions = {},
): NtfsScrubResult {
  const vol = NtfsVolume.open(image);
  const found = new FindingCollector();
  const walk = new NtfsPrivacyWalk(vol, image, found, options);
  walk.run();
  return { format: "ntfs", changed: found.findings(), ...walk.counts };
}
