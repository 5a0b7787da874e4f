/**
 * Privacy fixtures, built at test time with the real tools (needs root for the loop and
 * ntfs-3g mounts): small ext and NTFS volumes in which the secret {@linkcode SECRET} is
 * planted in names, contents, xattrs, symlinks, the label, the mount path and the journal;
 * plus `e2image -r` / `ntfsclone -m` metadata images of them.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { mustRun, run } from "../_helpers.ts";

/** The planted secret. */
export const SECRET = "Zebulon-4711-Quokka";
/** The part of the secret every place can hold (an ext label has 16 bytes). */
export const SECRET_CORE = "Zebulon-4711";

/** An ext variant: mkfs program and options. */
export interface ExtRecipe {
  /** A short name for test titles. */
  name: string;
  /** mkfs program. */
  mkfs: string;
  /** Extra mkfs options. */
  args: string[];
  /** Whether small files are stored inline. */
  inline: boolean;
}

/** The ext variants of the tests. */
export const EXT_RECIPES: readonly ExtRecipe[] = [
  {
    name: "ext4 inline_data",
    mkfs: "mkfs.ext4",
    args: ["-O", "inline_data", "-I", "256"],
    inline: true,
  },
  { name: "ext3 htree", mkfs: "mkfs.ext3", args: ["-O", "dir_index", "-I", "256"], inline: false },
  { name: "ext4 4k metadata_csum htree", mkfs: "mkfs.ext4", args: ["-b", "4096"], inline: false },
];

function sh(script: string, cwd: string): void {
  mustRun("sh", ["-ec", script], { cwd });
}

/** Plants the secret in a mounted tree at `mnt` (names, contents, xattrs, symlinks). */
export function plantTree(mnt: string): void {
  const S = SECRET;
  Deno.mkdirSync(`${mnt}/${S}-dir/${S}-sub`, { recursive: true });
  Deno.writeTextFileSync(`${mnt}/${S}-dir/note.txt`, `${S} inline content\n`);
  Deno.writeTextFileSync(`${mnt}/${S}-dir/${S}-sub/deep-${S}.txt`, `${S}\n`);
  Deno.writeTextFileSync(`${mnt}/data-${S}.bin`, `${S} `.repeat(2000));
  Deno.symlinkSync(S, `${mnt}/fast-link`);
  Deno.symlinkSync("/a-long-path".repeat(10) + `/${S}`, `${mnt}/slow-link`);
  for (let i = 0; i < 150; i++) Deno.writeTextFileSync(`${mnt}/${S}-dir/f${i}-${S}`, "");
  for (let i = 0; i < 150; i += 7) Deno.removeSync(`${mnt}/${S}-dir/f${i}-${S}`);
  const py = `import os
os.setxattr('${mnt}/${S}-dir/note.txt', 'user.${S}', b'value ${S}')
os.setxattr('${mnt}/data-${S}.bin', 'user.big-${S}', b'${S} ' * 20)
`;
  mustRun("python3", ["-c", py]);
}

/**
 * A census of a mounted tree: entry count per type and depth, plus the number of user xattrs
 * (each read back with getxattr, so the lookup works), for comparing before and after.
 */
export function census(mnt: string): string {
  const r = mustRun("find", [mnt, "-mindepth", "1", "-printf", "%y %d\\n"]);
  const counts = new Map<string, number>();
  for (const l of r.out.split("\n").filter((x) => x)) counts.set(l, (counts.get(l) ?? 0) + 1);
  const py = `import os, sys
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    for f in files + dirs:
        p = os.path.join(root, f)
        if os.path.islink(p): continue
        for x in os.listxattr(p):
            if x.startswith("user."):
                os.getxattr(p, x)
                n += 1
print(n)
`;
  const x = mustRun("python3", ["-c", py, mnt]).out.trim();
  return [...counts].sort().map(([k, v]) => `${k}:${v}`).join(" ") + ` xattrs:${x}`;
}

/** Builds an ext fixture `dir/<name>.img` (8 MiB) with the secret planted; returns its path. */
export function buildExt(dir: string, recipe: ExtRecipe, tag: string): string {
  const img = `${dir}/${tag}.img`;
  // The kernel records the mount path only when it fits s_last_mounted (64 bytes).
  const mnt = `${dir}/${SECRET}-${tag}`;
  Deno.mkdirSync(mnt, { recursive: true });
  mustRun("truncate", ["-s", "8M", img]);
  mustRun(recipe.mkfs, ["-q", "-F", "-L", SECRET.slice(0, 16), ...recipe.args, img]);
  mustRun("mount", ["-o", "loop", img, mnt]);
  try {
    plantTree(mnt);
  } finally {
    mustRun("umount", [mnt]);
  }
  return img;
}

/** Builds an NTFS fixture `dir/<tag>.img` (8 MiB) with the secret planted; returns its path. */
export function buildNtfs(dir: string, tag: string): string {
  const img = `${dir}/${tag}.img`;
  const mnt = `${dir}/${tag}-mnt`;
  Deno.mkdirSync(mnt, { recursive: true });
  mustRun("truncate", ["-s", "8M", img]);
  mustRun("mkntfs", ["-q", "-F", "-f", "-L", SECRET, img]);
  mustRun("ntfs-3g", [img, mnt]);
  try {
    plantTree(mnt);
  } finally {
    mustRun("umount", [mnt]);
  }
  return img;
}

/** The census of the tree in an image, mounted read-only (ext: loop; NTFS: ntfs-3g). */
export function mountedCensus(img: string, kind: "ext" | "ntfs"): string {
  const mnt = `${img}.ro-mnt`;
  Deno.mkdirSync(mnt, { recursive: true });
  if (kind === "ext") mustRun("mount", ["-o", "loop,ro,noload", img, mnt]);
  else mustRun("ntfs-3g", ["-o", "ro", img, mnt]);
  try {
    // Every entry must also stat (a lookup through the index, not just readdir).
    sh(`find . -mindepth 1 -exec stat -c %n {} + > /dev/null`, mnt);
    return census(mnt);
  } finally {
    mustRun("umount", [mnt]);
    Deno.removeSync(mnt);
  }
}

/** Where the secret (core) still occurs in a file, as UTF-8 and as UTF-16LE. */
export function secretHits(path: string): { utf8: number; utf16: number } {
  const b = Buffer.from(Deno.readFileSync(path));
  const count = (needle: Buffer) => {
    let n = 0;
    for (let i = b.indexOf(needle); i >= 0; i = b.indexOf(needle, i + 1)) n++;
    return n;
  };
  return {
    utf8: count(Buffer.from(SECRET_CORE, "utf8")),
    utf16: count(Buffer.from(SECRET_CORE, "utf16le")),
  };
}

/** `e2fsck -fn`: the exit status and output. */
export function e2fsck(img: string): { code: number; out: string } {
  const r = run("e2fsck", ["-fn", img]);
  return { code: r.code, out: r.out + r.err };
}

/** `ntfsfix -n`: the exit status and output. */
export function ntfsfix(img: string): { code: number; out: string } {
  const r = run("ntfsfix", ["-n", img]);
  return { code: r.code, out: r.out + r.err };
}

/**
 * Builds an ext4 fixture without mounting (no root needed): `mkfs.ext4 -d` from a tree with
 * the secret in names, contents and symlinks, then `debugfs -w ea_set` for a small in-inode
 * xattr and a large one that needs an xattr block. Returns the image path.
 */
export function buildExtUnmounted(dir: string, tag: string, mkfsArgs: string[] = []): string {
  const S = SECRET;
  const tree = `${dir}/${tag}-tree`;
  Deno.mkdirSync(`${tree}/${S}-dir`, { recursive: true });
  Deno.writeTextFileSync(`${tree}/${S}-dir/note.txt`, `${S}\n`);
  Deno.writeTextFileSync(`${tree}/big-${S}.bin`, `${S} `.repeat(500));
  for (let i = 0; i < 120; i++) Deno.writeTextFileSync(`${tree}/${S}-dir/f${i}-${S}`, "");
  Deno.symlinkSync(S, `${tree}/fast-link`);
  Deno.symlinkSync("/a-long-path".repeat(10) + `/${S}`, `${tree}/slow-link`);
  const img = `${dir}/${tag}.img`;
  mustRun("truncate", ["-s", "8M", img]);
  mustRun("mkfs.ext4", ["-q", "-F", "-L", S.slice(0, 16), ...mkfsArgs, "-d", tree, img]);
  const big = `${dir}/${tag}-xattr`;
  Deno.writeTextFileSync(big, `${S} `.repeat(40));
  mustRun("debugfs", ["-w", "-R", `ea_set /${S}-dir/note.txt user.${S} v-${S}`, img]);
  mustRun("debugfs", ["-w", "-R", `ea_set -f ${big} /big-${S}.bin user.big-${S}`, img]);
  return img;
}
