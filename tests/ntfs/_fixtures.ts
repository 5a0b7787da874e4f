/**
 * NTFS test volumes: `ntfsFixture(name)` returns the path of a fresh-per-process copy.
 * Committed volumes (tests/fixtures/ntfs/*.img.gz, built by scripts/fixtures/ntfs.sh and
 * checked against SHA256SUMS) are extracted; the others are built with mkntfs (and, for
 * populated ones, ntfs-3g as root) by the same script. Paths are cached per process.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { extractFixture, haveTool, isRoot, mustRun, ROOT, sha256File } from "../_helpers.ts";

/** Committed volumes, gzip-compressed. */
export const COMMITTED = ["c4k", "c512", "odd4k"] as const;
/** Volumes the script builds at test time (mkntfs; c64k also needs root for ntfs-3g). */
export const BUILT = ["empty4k", "c64k"] as const;
/** Every fixture name. */
export type NtfsFixtureName = typeof COMMITTED[number] | typeof BUILT[number];

let dir: string | undefined;
const cache = new Map<string, string>();

function workDir(): string {
  if (!dir) {
    dir = Deno.makeTempDirSync({ prefix: "fsimage-ntfs-fx-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir!, { recursive: true });
      } catch {
        // gone
      }
    });
  }
  return dir;
}

function expectedSums(): Map<string, string> {
  const m = new Map<string, string>();
  const text = Deno.readTextFileSync(`${ROOT}/tests/fixtures/ntfs/SHA256SUMS`);
  for (const line of text.split("\n")) {
    const [sum, name] = line.trim().split(/\s+/);
    if (sum && name) m.set(name, sum);
  }
  return m;
}

/** True when `name` can be had here (committed, or buildable with the tools present). */
export function haveNtfsFixture(name: NtfsFixtureName): boolean {
  if ((COMMITTED as readonly string[]).includes(name)) return true;
  if (!haveTool("mkntfs")) return false;
  return name === "empty4k" || (isRoot() && haveTool("ntfs-3g"));
}

/**
 * The path of a private copy of fixture `name` (tests may modify it: call with
 * `fresh: true` to get a new copy instead of the cached one).
 */
export function ntfsFixture(name: NtfsFixtureName, options: { fresh?: boolean } = {}): string {
  const cached = cache.get(name);
  if (cached && !options.fresh) return cached;
  const d = workDir();
  const path = options.fresh ? `${d}/${name}-${crypto.randomUUID()}.img` : `${d}/${name}.img`;
  if ((COMMITTED as readonly string[]).includes(name)) {
    extractFixture(`ntfs/${name}.img.gz`, path);
    const want = expectedSums().get(`${name}.img`);
    const got = sha256File(path);
    if (want !== got) {
      throw new Error(`fixture ${name}.img: sha256 ${got}, SHA256SUMS says ${want}`);
    }
  } else {
    const base = `${d}/${name}.img`;
    if (!existsSync(base)) {
      mustRun("bash", [`${ROOT}/scripts/fixtures/ntfs.sh`, d, name]);
    }
    if (path !== base) Deno.copyFileSync(base, path);
  }
  if (!options.fresh) cache.set(name, path);
  return path;
}
