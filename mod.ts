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
 * Parse an ext superblock from bytes (here a filesystem image read into memory):
 *
 * ```ts
 * import { gunzipSync } from "node:zlib";
 * import { parseExtSuperblock } from "./mod.ts";
 * const fs = gunzipSync(Deno.readFileSync(new URL("./tests/fixtures/demo/ext4.img.gz", import.meta.url)));
 * const sb = parseExtSuperblock(new Uint8Array(fs).subarray(1024, 2048)); // it sits at byte 1024
 * console.assert(sb.magic === 0xef53 && sb.volumeName === "demo" && 1024 << sb.logBlockSize === 1024);
 * ```
 *
 * Stream an ntfsclone image through the codec, without files (web streams both ways):
 *
 * ```ts
 * import { createNtfscloneHeader, NtfscloneDecoderStream, NtfscloneEncoderStream } from "./mod.ts";
 * const header = createNtfscloneHeader({ clusterSize: 512, deviceSize: 2048, nrClusters: 3, inuse: 2 });
 * const image = ReadableStream.from([
 *   { kind: "clusters" as const, data: new Uint8Array(1024).fill(7) },
 *   { kind: "gap" as const, count: 1 },
 * ]).pipeThrough(new NtfscloneEncoderStream(header));
 * const records = await Array.fromAsync(image.pipeThrough(new NtfscloneDecoderStream()));
 * console.assert(records[0]!.kind === "header" && records[1]!.kind === "clusters");
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
