/**
 * The ntfsclone "special image" format (`ntfsclone --save-image` / `--restore-image`): a
 * 56-byte header ({@linkcode parseNtfscloneHeader}, {@linkcode encodeNtfscloneHeader}) followed
 * by a command stream of stored clusters (`0x01` + payload) and gaps (`0x00` + signed 64-bit
 * cluster count).
 *
 * - Encoding: {@linkcode NtfscloneImageWriter} (sync, batched), {@linkcode saveImage} (the exact
 *   `--save-image` command sequence from a used-cluster list), {@linkcode NtfscloneEncoderStream}.
 * - Decoding: {@linkcode NtfscloneImageReader} (sync, works on pipes),
 *   {@linkcode restoreNtfsclone} (to a file, device or stream, as `--restore-image`),
 *   {@linkcode listNtfscloneClusters}, {@linkcode NtfscloneDecoderStream}.
 * - Random access: {@linkcode NtfscloneImageSource} (the described device as a `Source`).
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "../io/mod.ts";
 * import { createNtfscloneHeader, restoreNtfsclone, saveImage } from "./mod.ts";
 * const device = new MemorySource(new Uint8Array(8192).map((_, i) => i & 0xff));
 * const header = createNtfscloneHeader({ clusterSize: 1024, deviceSize: 8192, nrClusters: 7, inuse: 2 });
 * const image = new MemorySink({ kind: "stream" });
 * saveImage(device, image, [{ start: 0, count: 2 }, { start: 7, count: 1 }], header);
 * let at = 0;
 * const bytes = image.bytes();
 * const input = { readSync(p: Uint8Array) {
 *   const n = Math.min(p.length, bytes.length - at); p.set(bytes.subarray(at, at + n)); at += n;
 *   return n || null;
 * } };
 * const restored = new MemorySink();
 * restoreNtfsclone(input, restored);
 * console.assert(restored.size === 8192 && restored.bytes()[1000] === (1000 & 0xff));
 * ```
 *
 * @module
 */
export * from "./header.ts";
export {
  DEFAULT_BATCH_SIZE,
  type NtfscloneClustersCommand,
  type NtfscloneCommand,
  NtfscloneDecoderStream,
  type NtfscloneDecoderStreamOptions,
  type NtfscloneGapCommand,
  NtfscloneImageReader,
  type NtfscloneImageReaderOptions,
  type NtfscloneRecord,
} from "./decoder.ts";
export {
  DEFAULT_WRITE_BUFFER_SIZE,
  type NtfscloneEncoderInput,
  NtfscloneEncoderStream,
  type NtfscloneEncoderStreamOptions,
  NtfscloneImageWriter,
  type NtfscloneImageWriterOptions,
  saveImage,
  type SaveImageOptions,
  type SaveResult,
} from "./encoder.ts";
export * from "./restore.ts";
export * from "./source.ts";
