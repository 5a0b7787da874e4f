/**
 * Real NTFS volumes and images for the oracle tests, made by mkntfs, ntfscp and ntfsclone.
 *
 * @module
 */
import { mustRun } from "../_helpers.ts";
import { prng } from "./_util.ts";

/** Options of {@linkcode makeVolume}. */
export interface VolumeOptions {
  /** Device size in bytes. */
  size: number;
  /** Cluster size (mkntfs -c). */
  clusterSize?: number;
  /** Sector size (mkntfs -s). */
  sectorSize?: number;
  /** NTFS sectors (mkntfs's last argument), to leave room after the volume. */
  sectors?: number;
  /** Files to copy in: [name, size, seed]. */
  files?: Array<[string, number, number]>;
}

/** Builds an NTFS volume file with mkntfs (+ ntfscp), returns its path. */
export function makeVolume(dir: string, name: string, o: VolumeOptions): string {
  const path = `${dir}/${name}`;
  using f = Deno.openSync(path, { create: true, write: true, truncate: true });
  f.truncateSync(o.size);
  const args = ["-F", "-q", "-f"];
  if (o.clusterSize) args.push("-c", String(o.clusterSize));
  if (o.sectorSize) args.push("-s", String(o.sectorSize));
  args.push(path);
  if (o.sectors) args.push(String(o.sectors));
  mustRun("mkntfs", args);
  for (const [file, size, seed] of o.files ?? []) {
    const rnd = prng(seed);
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i += 64) b[i] = (rnd() * 256) | 0;
    const tmp = `${dir}/${file}.src`;
    Deno.writeFileSync(tmp, b);
    mustRun("ntfscp", ["-q", "-f", path, tmp, file]);
    Deno.removeSync(tmp);
  }
  return path;
}

/** Runs the real `ntfsclone --save-image` and returns the image path. */
export function realSave(volume: string, image: string): string {
  mustRun("ntfsclone", ["-q", "-s", "-O", image, volume]);
  return image;
}
