/**
 * ext fixture images for tests, built once per process with the real tools (mkfs.ext2/3/4 -d,
 * debugfs -w, e2fsck -fyD) into a temporary directory, deterministically (fixed UUID, hash
 * seed and E2FSPROGS_FAKE_TIME). Where mkfs is absent the committed gzip copies under
 * tests/fixtures/ext/ (made by scripts/fixtures/ext.sh) are used instead.
 *
 * Run as a script (`deno run -A tests/ext/_fixtures.ts OUTDIR`) to build every fixture into
 * OUTDIR.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { haveTool, mustRun, readFixture, ROOT, sha256 } from "../_helpers.ts";
import { ExtVolume } from "../../lib/ext/mod.ts";
import { openSource } from "../../lib/io/mod.ts";

const UUID = "5e1f1a6e-0d0c-4b7a-9c3e-2f4d6b8a0c1e";
const SEED = "0b2d4f60-8a9c-4e1f-b3d5-7f9a1c3e5b7d";
const ENV = {
  E2FSPROGS_FAKE_TIME: "1700000000",
  E2FSCK_TIME: "1700000000",
  MKE2FS_CONFIG: "/etc/mke2fs.conf",
};
const T0 = new Date(1700000000 * 1000);

interface Recipe {
  mkfs: string;
  args: string[];
  size: string;
  tree: (dir: string) => void;
  debugfs?: string[];
  fsckD?: boolean;
  /** Not reproducible across machines (MMP stamps host, path and time): never committed. */
  local?: boolean;
}

function write(path: string, bytes: Uint8Array | string): void {
  Deno.mkdirSync(path.replace(/\/[^/]*$/, ""), { recursive: true });
  Deno.writeFileSync(path, typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
}

/** Nonzero, compressible file content: numbered text lines. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  const enc = new TextEncoder();
  let off = 0;
  for (let line = 0; off < n; line++) {
    const l = enc.encode(`fixture ${seed} line ${line} offset ${off}\n`);
    b.set(l.subarray(0, Math.min(l.length, n - off)), off);
    off += l.length;
  }
  return b;
}

/** A common tree: files, a subdirectory, a slow and a fast symlink. */
function basicTree(dir: string): void {
  write(`${dir}/hello.txt`, "hello, world\n");
  write(`${dir}/data.bin`, pattern(300 * 1024, 7));
  write(`${dir}/sub/inner.txt`, "inner\n");
  write(`${dir}/sub/deeper/leaf.bin`, pattern(5000, 9));
  Deno.symlinkSync("hello.txt", `${dir}/fast-link`);
  Deno.symlinkSync(
    "sub/deeper/" + "a-long-path-component-".repeat(4) + "/../leaf.bin",
    `${dir}/slow-link`,
  );
}

function bigDir(dir: string, n: number): void {
  for (let i = 0; i < n; i++) {
    write(`${dir}/many/entry-${String(i).padStart(4, "0")}.txt`, `${i}\n`);
  }
}

/** A sparse file with one data block every other block: one extent per data block. */
function fragmented(path: string, blocks: number, bs: number): void {
  Deno.mkdirSync(path.replace(/\/[^/]*$/, ""), { recursive: true });
  using f = Deno.openSync(path, { write: true, create: true, truncate: true });
  const data = pattern(bs, 3);
  for (let i = 0; i < blocks; i++) {
    data[0] = i & 0xff;
    f.seekSync(2 * i * bs, Deno.SeekMode.Start);
    f.writeSync(data);
  }
  f.truncateSync(2 * blocks * bs);
}

const XATTR_VALUE = "v".repeat(700);

const RECIPES: Record<string, Recipe> = {
  "ext2-1k": {
    mkfs: "mkfs.ext2",
    args: ["-b", "1024"],
    size: "8M",
    tree: (d) => {
      basicTree(d);
      write(`${d}/ind.bin`, pattern(600 * 1024, 11));
    },
  },
  "ext3-htree": {
    mkfs: "mkfs.ext3",
    args: ["-b", "1024"],
    size: "8M",
    tree: (d) => {
      basicTree(d);
      bigDir(d, 320);
    },
    fsckD: true,
  },
  "ext4-default": {
    mkfs: "mkfs.ext4",
    args: ["-b", "4096"],
    size: "16M",
    tree: basicTree,
    debugfs: [`ea_set -f ${"@XATTR"} /hello.txt user.big`, "rm /sub/inner.txt"],
  },
  "ext4-1k": {
    mkfs: "mkfs.ext4",
    args: ["-b", "1024"],
    size: "16M",
    tree: (d) => {
      basicTree(d);
      fragmented(`${d}/frag.bin`, 700, 1024);
    },
  },
  "ext4-2k": { mkfs: "mkfs.ext4", args: ["-b", "2048"], size: "8M", tree: basicTree },
  "ext4-64k": {
    mkfs: "mkfs.ext4",
    args: ["-b", "65536", "-O", "^has_journal"],
    size: "16M",
    tree: basicTree,
  },
  "ext4-inline": {
    mkfs: "mkfs.ext4",
    args: ["-b", "4096", "-O", "inline_data", "-I", "256"],
    size: "8M",
    tree: (d) => {
      basicTree(d);
      write(`${d}/tiny.txt`, "tiny\n");
      write(`${d}/smalldir/a`, "a");
    },
  },
  "ext4-bigalloc": {
    mkfs: "mkfs.ext4",
    args: ["-b", "1024", "-O", "bigalloc", "-C", "16384"],
    size: "16M",
    tree: basicTree,
  },
  "ext4-metabg": {
    mkfs: "mkfs.ext4",
    args: ["-b", "1024", "-g", "256", "-O", "meta_bg,^resize_inode"],
    size: "8M",
    tree: basicTree,
  },
  "ext4-nojournal": {
    mkfs: "mkfs.ext4",
    args: ["-b", "4096", "-O", "^has_journal"],
    size: "8M",
    tree: basicTree,
  },
  "ext4-uninit": {
    mkfs: "mkfs.ext4",
    args: ["-b", "1024", "-O", "^metadata_csum,uninit_bg"],
    size: "16M",
    tree: basicTree,
  },
  "ext4-features": {
    mkfs: "mkfs.ext4",
    args: ["-b", "4096", "-O", "quota,project,orphan_file"],
    size: "16M",
    tree: basicTree,
  },
  "ext4-4k-2groups": {
    mkfs: "mkfs.ext4",
    args: ["-b", "4096", "-O", "^flex_bg"],
    size: "160M",
    tree: basicTree,
    local: true,
  },
  "ext4-mmp": {
    mkfs: "mkfs.ext4",
    args: ["-b", "4096", "-O", "mmp"],
    size: "8M",
    tree: basicTree,
    local: true,
  },
  "ext2-2groups": {
    mkfs: "mkfs.ext2",
    args: ["-b", "1024", "-N", "4096"],
    size: "16M",
    tree: basicTree,
  },
  "ext2-rev0": {
    mkfs: "mkfs.ext2",
    args: ["-b", "1024", "-r", "0"],
    size: "4M",
    tree: basicTree,
  },
  "ext2-hurd": {
    mkfs: "mkfs.ext2",
    args: ["-b", "1024", "-o", "hurd"],
    size: "8M",
    tree: basicTree,
    debugfs: ["sif /data.bin translator 5000", "sif /sub translator 6000"],
  },
  "ext4-deep": {
    mkfs: "mkfs.ext4",
    args: ["-b", "1024", "-O", "^has_journal"],
    size: "8M",
    tree: (d) => fragmented(`${d}/frag.bin`, 1200, 1024),
  },
};

/** Names of every fixture {@linkcode extFixture} can build. */
export const extFixtureNames: readonly string[] = Object.keys(RECIPES);

/** Names of the fixtures that are reproducible and committed under tests/fixtures/ext/. */
export const extCommittedFixtureNames: readonly string[] = extFixtureNames.filter((n) =>
  !RECIPES[n]!.local
);

let workDir: string | undefined;
const built = new Map<string, string>();

function touchTree(dir: string): void {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) touchTree(p);
    if (!e.isSymlink) Deno.utimeSync(p, T0, T0);
  }
  Deno.utimeSync(dir, T0, T0);
}

/**
 * mkfs -d copies each source file's ctime, which cannot be set; rewrite the ctime of every
 * in-use inode copied from the tree (the root and inodes from s_first_ino + 1 on) to T0.
 */
function pinCtimes(img: string, script: string): void {
  const src = openSource(img);
  const inos: number[] = [];
  try {
    const v = ExtVolume.open(src);
    const first = v.superblock.firstIno;
    for (let g = 0; g < v.groupCount; g++) {
      const bm = v.inodeBitmap(g);
      for (let i = 0; i < v.inodesPerGroup; i++) {
        if (!(bm[i >> 3]! & (1 << (i & 7)))) continue;
        const ino = g * v.inodesPerGroup + i + 1;
        if (ino === 2 || ino > first) inos.push(ino);
      }
    }
  } finally {
    src.close();
  }
  const t = Math.floor(T0.getTime() / 1000);
  const lines = inos.map((i) =>
    `sif <${i}> ctime ${t}\nsif <${i}> atime ${t}\nsif <${i}> mtime ${t}\n`
  );
  // mke2fs stamps some reserved inodes (bad blocks, resize, journal) with the real time.
  const src2 = openSource(img);
  try {
    const v = ExtVolume.open(src2);
    for (let ino = 1; ino < v.superblock.firstIno; ino++) {
      if (ino === 2) continue;
      const raw = v.readInodeBytes(ino);
      const dv = new DataView(raw.buffer);
      for (const [field, off] of [["atime", 8], ["ctime", 12], ["mtime", 16]] as const) {
        if (dv.getUint32(off, true) !== 0) lines.push(`sif <${ino}> ${field} ${t}\n`);
      }
    }
  } finally {
    src2.close();
  }
  write(script, lines.join(""));
  mustRun("debugfs", ["-w", "-f", script, img], { env: ENV });
}

/** Builds fixture `name` with the real tools into `outDir`; returns the image path. */
export function buildExtFixture(name: string, outDir: string): string {
  const r = RECIPES[name];
  if (!r) throw new RangeError(`Unknown ext fixture ${name}`);
  const src = `${outDir}/${name}.src`;
  try {
    Deno.removeSync(src, { recursive: true });
  } catch {
    // absent
  }
  Deno.mkdirSync(src, { recursive: true });
  r.tree(src);
  touchTree(src);
  const img = `${outDir}/${name}.img`;
  try {
    Deno.removeSync(img);
  } catch {
    // absent
  }
  mustRun(r.mkfs, [
    "-q",
    "-F",
    "-U",
    UUID,
    "-E",
    `hash_seed=${SEED}`,
    "-L",
    name.slice(0, 16),
    ...r.args,
    "-d",
    src,
    img,
    r.size,
  ], { env: ENV });
  pinCtimes(img, `${outDir}/${name}.ctime`);
  if (r.debugfs) {
    const xattr = `${outDir}/${name}.xattr`;
    write(xattr, XATTR_VALUE);
    for (const cmd of r.debugfs) {
      mustRun("debugfs", ["-w", "-R", cmd.replace("@XATTR", xattr), img], { env: ENV });
    }
  }
  if (r.fsckD) {
    const res = new Deno.Command("e2fsck", {
      args: ["-fyD", img],
      env: ENV,
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    if (res.code > 1) throw new Error(`e2fsck -fyD ${img} failed (${res.code})`);
  }
  Deno.removeSync(src, { recursive: true });
  return img;
}

/**
 * Returns the path of fixture image `name`, built once per process into a temp dir with the
 * real tools, or extracted from tests/fixtures/ext/<name>.img.gz when mkfs is absent.
 */
export function extFixture(name: string): string {
  const have = built.get(name);
  if (have) return have;
  if (workDir === undefined) {
    const dir = Deno.makeTempDirSync({ prefix: "fsimage-ext-fixtures-" });
    workDir = dir;
    // Removed when the test process ends.
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    });
  }
  let path: string;
  if (haveTool("mkfs.ext4") && haveTool("debugfs")) {
    path = buildExtFixture(name, workDir);
  } else {
    const rel = `ext/${name}.img.gz`;
    if (!existsSync(`${ROOT}/tests/fixtures/${rel}`)) {
      throw new Error(`No mkfs.ext4 and no committed fixture ${rel}`);
    }
    // Fallback copies are checked against the manifest.
    const bytes = readFixture(rel);
    const want = committedSums().get(`${name}.img`);
    if (want !== sha256(bytes)) throw new Error(`${rel} does not match SHA256SUMS`);
    path = `${workDir}/${name}.img`;
    Deno.writeFileSync(path, bytes);
  }
  built.set(name, path);
  return path;
}

/** The manifest of committed fixtures: image name → sha256 of the uncompressed image. */
export function committedSums(): Map<string, string> {
  const m = new Map<string, string>();
  const text = Deno.readTextFileSync(`${ROOT}/tests/fixtures/ext/SHA256SUMS`);
  for (const line of text.split("\n")) {
    const [sum, file] = line.trim().split(/\s+/);
    if (sum && file) m.set(file.replace(/^\*/, ""), sum);
  }
  return m;
}

if (import.meta.main) {
  const out = Deno.args[0] ?? ".";
  Deno.mkdirSync(out, { recursive: true });
  const names = Deno.args.slice(1);
  for (const n of names.length ? names : extCommittedFixtureNames) {
    console.log(buildExtFixture(n, out));
  }
}
