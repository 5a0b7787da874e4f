/**
 * {@linkcode scrubExt}: removes, in place, what {@linkcode auditExt} finds in an ext2/3/4 raw
 * image — scrambles every name (same length, unique per directory), wipes deleted entries,
 * slack, inline data, user xattr names and values, symlink targets (same length), the
 * journal (an empty, valid journal superblock stays), the label and last-mounted path,
 * deleted inodes and (unless disabled) file data — and redoes every checksum it breaks, so
 * `e2fsck -fn` still passes and the image still mounts. htree directories become linear.
 *
 * @module
 */
import type { Source } from "../io/types.ts";
import { FindingCollector, type PrivacyFinding } from "../_internal/privacy.ts";
import { ExtVolume } from "./volume.ts";
import { ExtPrivacyWalk, type ExtScrubCounts, type PrivacyWriter } from "./_privacy_engine.ts";

export type { ExtScrubCounts, PrivacyWriter } from "./_privacy_engine.ts";
export type { PrivacyFinding, PrivacyKind, PrivacySeverity } from "../_internal/privacy.ts";
export type { Source };

/** Options of {@linkcode scrubExt}. */
export interface ScrubExtOptions {
  /** Also zero the data blocks of regular files (default true). */
  wipeData?: boolean;
  /** Also zero the unallocated blocks that are not zero (default false). */
  freeSpace?: boolean;
}

/** What {@linkcode scrubExt} changed. */
export interface ExtScrubResult extends ExtScrubCounts {
  /** "ext". */
  format: "ext";
  /** What was found and rewritten, per kind (UUIDs are reported and kept). */
  changed: PrivacyFinding[];
}

/**
 * Scrubs the ext image `image` in place: it is read as a {@linkcode Source} and written back
 * through `writeAt` (an `FdSink` opened on the file with mode "existing" is both).
 *
 * @example
 * ```ts ignore
 * import { scrubExt } from "./scrub.ts";
 * import { openSink } from "../io/mod.ts";
 * const img = openSink("meta.raw", { mode: "existing" });
 * const r = scrubExt(img as never);
 * console.log(r.changed.map((f) => `${f.kind}: ${f.count}`));
 * ```
 */
export function scrubExt(
  image: Source & PrivacyWriter,
  options: ScrubExtOptions = {},
): ExtScrubResult {
  const vol = ExtVolume.open(image);
  const found = new FindingCollector();
  const walk = new ExtPrivacyWalk(vol, image, found, options);
  walk.run();
  return { format: "ext", changed: found.findings(), ...walk.counts };
}
