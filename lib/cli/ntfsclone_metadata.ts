/**
 * The metadata-only modes of `fsimage ntfsclone` (-m to a sparse file, -m -s to an image).
 *
 * @module
 */
import type { FdSink } from "../io/mod.ts";
import type { NtfsVolume } from "../ntfs/mod.ts";
import type { NtfscloneRun } from "./ntfsclone.ts";

/** Runs a metadata clone; returns the exit status. */
export function runMetadataClone(
  run: NtfscloneRun,
  _vol: NtfsVolume,
  _sink: FdSink,
  _deviceSize: number,
): number {
  run.out.write("ERROR: metadata cloning is not implemented yet\n");
  return 1;
}
