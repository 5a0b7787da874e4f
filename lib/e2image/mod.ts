/**
 * e2image's "normal" image format: the header codec ({@linkcode parseE2imageHeader},
 * {@linkcode encodeE2imageHeader}), the writer that builds a normal image from an opened ext
 * filesystem ({@linkcode writeNormalImage}) and the `-I` installer that puts an image's
 * metadata back onto a filesystem ({@linkcode installNormalImage}).
 *
 * @example
 * ```ts
 * import { encodeE2imageHeader, parseE2imageHeader } from "./mod.ts";
 * const h = parseE2imageHeader(encodeE2imageHeader({ fsBlocksize: 1024, offsetInode: 3072 }));
 * console.assert(h.magicDescriptor === "Ext2 Image 1.0" && h.offsetInode === 3072);
 * ```
 *
 * @module
 */
export * from "./header.ts";
export * from "./normal.ts";
export * from "./install.ts";
export type { Sink, SinkKind, Source } from "../io/types.ts";
