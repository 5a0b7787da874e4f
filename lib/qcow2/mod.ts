/**
 * QCOW2 (qemu copy-on-write v2/v3) images: the header codec, a reader that is a
 * {@linkcode Source} of the guest disk (so ext and NTFS walkers run over a QCOW2 file as over a
 * raw one), and a deterministic writer that streams to files, devices and pipes and produces
 * images `qemu-img check` finds clean and `e2image -r` reads.
 *
 * - {@linkcode probeQcow2}: magic check.
 * - {@linkcode parseQcow2Header} / {@linkcode encodeQcow2Header}: the header codec.
 * - {@linkcode Qcow2Reader}: random access to the guest disk, {@linkcode Qcow2Reader.allocatedExtents}.
 * - {@linkcode writeQcow2}: extents of a source → QCOW2 image.
 * - {@linkcode checkQcow2}: refcount and flag consistency, as `qemu-img check` reports it.
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "../io/mod.ts";
 * import { Qcow2Reader, writeQcow2 } from "./mod.ts";
 * const raw = new Uint8Array(1 << 20).fill(5, 0, 4096);
 * const out = new MemorySink();
 * writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: raw.length }], {
 *   virtualSize: raw.length,
 *   clusterSize: 4096,
 * });
 * const img = Qcow2Reader.open(new MemorySource(out.bytes()));
 * console.assert(img.size === raw.length && img.allocatedExtents().length === 1);
 * ```
 *
 * @module
 */
export * from "./header.ts";
export * from "./reader.ts";
export * from "./writer.ts";
export * from "./check.ts";
// The shared types in this module's signatures, so `@fsimage/fsimage/qcow2` documents itself.
export type { Sink, SinkKind, Source } from "../io/types.ts";
export type { BlockExtent, ByteExtent } from "../_internal/extents.ts";
export type { FsimageError, FsimageErrorCode, ReadError } from "../errors.ts";
