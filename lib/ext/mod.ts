/**
 * The ext2/3/4 module of fsimage: open a file system over any {@linkcode Source}
 * ({@linkcode ExtVolume}), read its superblock, group descriptors, inodes and block maps, and
 * compute exactly the blocks e2image copies ({@linkcode ExtVolume.e2imageSelection}) plus the
 * directory blocks `-s` scrambles ({@linkcode scrambleDirBlock}).
 *
 * Errors carry libext2fs's wording in `details.compat` (and e2image's context phrase in
 * `details.context`) so the e2image command can print what the original prints.
 *
 * @example
 * ```ts ignore
 * import { ExtVolume, ScrambleState, scrambleDirBlock } from "./mod.ts";
 * import { copyExtents, openSink, openSource } from "../io/mod.ts";
 * import { blocksToBytes } from "../_internal/extents.ts";
 * const src = openSource("fs.img");
 * const vol = ExtVolume.open(src);
 * const sel = vol.e2imageSelection({ scramble: true });
 * const state = new ScrambleState();
 * // ... copyExtents(src, sink, blocksToBytes(sel.blocks, vol.blockSize), { transform })
 * ```
 *
 * @module
 */
import type { Source } from "../io/types.ts";
export type { Source };
export * from "./superblock.ts";
export * from "./group_desc.ts";
export * from "./inode.ts";
export * from "./block_map.ts";
export * from "./volume.ts";
export * from "./selection.ts";
export * from "./scramble.ts";
export * from "./dir.ts";
export * from "./xattr.ts";
export * from "./journal.ts";
export type { BlockExtent } from "../_internal/extents.ts";
export * from "./audit.ts";
export * from "./scrub.ts";
