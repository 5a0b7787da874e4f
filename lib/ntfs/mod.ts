/**
 * NTFS for fsimage: the boot sector, update sequence fixups, MFT records, attributes,
 * runlists and attribute lists, and the {@linkcode NtfsVolume} walker that computes the
 * clusters ntfsclone copies (and, for metadata images, what it keeps and wipes).
 *
 * @example
 * ```ts ignore
 * import { NtfsVolume } from "./mod.ts";
 * import { openSource } from "../io/mod.ts";
 * const vol = NtfsVolume.open(openSource("ntfs.img"));
 * console.log(vol.scan().used);
 * ```
 *
 * @module
 */
export * from "./boot.ts";
export * from "./fixup.ts";
export * from "./runlist.ts";
export * from "./record.ts";
export * from "./volume.ts";
export * from "./metadata.ts";
export type { Source } from "../io/types.ts";
export type { BlockExtent } from "../_internal/extents.ts";
export type {
  CorruptImageError,
  CorruptionDetails,
  FsimageError,
  FsimageErrorCode,
} from "../errors.ts";
export * from "./audit.ts";
export * from "./scrub.ts";
