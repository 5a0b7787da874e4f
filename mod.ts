/**
 * fsimage: save, clone and restore ext2/3/4 and NTFS filesystems, as a library.
 *
 * - `io`: sources and sinks over files, devices, windows and memory, and the sparse raw writer.
 * - `ext`: ext2/3/4 metadata and the blocks e2image copies.
 * - `e2image`: e2image's "normal" image format.
 * - `qcow2`: QCOW2 reader (a source like any other) and writer.
 * - `ntfs`: NTFS metadata and the clusters ntfsclone copies.
 * - `ntfsclone`: the ntfsclone special image format.
 *
 * The library needs no permission: it runs over in-memory buffers as well as files.
 *
 * @example
 * ```ts
 * import { copyExtents, MemorySink, MemorySource } from "./mod.ts";
 * const out = new MemorySink();
 * copyExtents(new MemorySource(new Uint8Array(1024).fill(1)), out, [{ offset: 0, length: 512 }]);
 * console.assert(out.size === 1024);
 * ```
 *
 * @module
 */
export * from "./lib/errors.ts";
export * from "./lib/io/mod.ts";
export * from "./lib/ext/mod.ts";
export * from "./lib/e2image/mod.ts";
export * from "./lib/qcow2/mod.ts";
export * from "./lib/ntfs/mod.ts";
export * from "./lib/ntfsclone/mod.ts";
