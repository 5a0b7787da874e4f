/**
 * The I/O seam of fsimage: random-access {@linkcode Source}s and {@linkcode Sink}s over files,
 * block devices, windows, memory and standard streams, and the sparse raw writer
 * {@linkcode copyExtents}.
 *
 * @example
 * ```ts
 * import { copyExtents, MemorySink, MemorySource } from "./mod.ts";
 * const src = new MemorySource(new Uint8Array(4096).fill(7));
 * const out = new MemorySink();
 * copyExtents(src, out, [{ offset: 0, length: 512 }]);
 * console.assert(out.size === 4096 && out.bytes()[0] === 7 && out.bytes()[512] === 0);
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./memory.ts";
export * from "./window.ts";
export * from "./faulty.ts";
export * from "./util.ts";
export * from "./sparse.ts";
export * from "./file.ts";
export * from "../_internal/extents.ts";
export * from "./overlay.ts";
export * from "./writeback.ts";
