/**
 * The domain errors of fsimage. Callers catch exactly these; anything else escaping the library
 * is a bug (argument misuse throws the built-in `TypeError` or `RangeError`).
 *
 * Every class carries a stable {@linkcode FsimageError.code} string that scripts and tests can
 * match on, independent of the message wording.
 *
 * @module
 */

/** The stable codes of {@linkcode FsimageError} subclasses. */
export type FsimageErrorCode =
  | "CORRUPT"
  | "UNSUPPORTED"
  | "READ_FAILED"
  | "WRITE_FAILED"
  | "NO_SPACE"
  | "LIMIT_EXCEEDED";

/**
 * Base class of every domain error thrown by the library.
 *
 * @example
 * ```ts
 * import { CorruptImageError, FsimageError } from "./errors.ts";
 * const e = new CorruptImageError("Cannot read ext superblock: bad magic", { format: "ext" });
 * console.assert(e instanceof FsimageError && e.code === "CORRUPT");
 * ```
 */
export class FsimageError extends Error {
  /** A stable machine-readable code. */
  readonly code: FsimageErrorCode;
  /** Creates an error with a code and a message. */
  constructor(code: FsimageErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FsimageError";
    this.code = code;
  }
}

/** Where a corrupt value sits and what was expected; all fields optional. */
export interface CorruptionDetails {
  /** The format being read: "ext", "ntfs", "qcow2", "ntfsclone", "e2image". */
  format?: string;
  /** The structure, e.g. "superblock", "MFT record 5". */
  structure?: string;
  /** The on-disk field name, e.g. "s_log_block_size". */
  field?: string;
  /** Absolute byte offset of the field in the source. */
  offset?: number;
  /** What a valid value would be. */
  expected?: string;
  /** What was found. */
  actual?: string;
  /**
   * The original tool's wording of this error (e.g. libext2fs's "Bad magic number in
   * super-block"), so a drop-in command can print exactly what the original prints.
   */
  compat?: string;
  /**
   * The original tool's phrase that follows `compat` in its message, e.g. e2image's "while
   * iterating over inode 12", so a drop-in command can print `<prog>: <compat> <context>`.
   */
  context?: string;
}

/**
 * The input is not a valid instance of its format: bad magic, a field out of range, a table
 * pointing outside the image, a loop in a tree. The message names the structure and the byte
 * offset in hex.
 *
 * @example
 * ```ts
 * import { CorruptImageError } from "./errors.ts";
 * const e = new CorruptImageError("Cannot read ext superblock: bad magic (byte 0x438)", {
 *   format: "ext",
 *   offset: 0x438,
 * });
 * console.assert(e.details.offset === 0x438);
 * ```
 */
export class CorruptImageError extends FsimageError {
  /** Structured details of the corruption. */
  readonly details: CorruptionDetails;
  /** Creates a corruption error. */
  constructor(message: string, details: CorruptionDetails = {}, options?: ErrorOptions) {
    super("CORRUPT", message, options);
    this.name = "CorruptImageError";
    this.details = details;
  }
}

/**
 * The input is valid but uses a feature fsimage refuses (an unknown incompatible feature bit,
 * an encrypted QCOW2 image, a backing file).
 *
 * @example
 * ```ts
 * import { UnsupportedFeatureError } from "./errors.ts";
 * const e = new UnsupportedFeatureError("qcow2", "backing file");
 * console.assert(e.code === "UNSUPPORTED" && e.feature === "backing file");
 * ```
 */
export class UnsupportedFeatureError extends FsimageError {
  /** The format whose feature is refused. */
  readonly format: string;
  /** The feature's name. */
  readonly feature: string;
  /** The original tool's wording of this error, when a drop-in command must print it. */
  readonly compat?: string;
  /** Creates the error; `message` defaults to a sentence naming format and feature. */
  constructor(format: string, feature: string, message?: string, compat?: string) {
    super("UNSUPPORTED", message ?? `Unsupported ${format} feature: ${feature}`);
    this.name = "UnsupportedFeatureError";
    this.format = format;
    this.feature = feature;
    if (compat !== undefined) this.compat = compat;
  }
}

/**
 * Reading the source failed at a byte range (an I/O error, or a short read inside the range
 * the source claims to have).
 *
 * @example
 * ```ts
 * import { ReadError } from "./errors.ts";
 * const e = new ReadError("disk.img", 4096, 512, "Input/output error");
 * console.assert(e.offset === 4096 && e.message.includes("0x1000"));
 * ```
 */
export class ReadError extends FsimageError {
  /** The source's name (a path, "stdin", "memory"). */
  readonly source: string;
  /** Byte offset of the failed read; -1 when the source could not be opened. */
  readonly offset: number;
  /** Length of the failed read. */
  readonly length: number;
  /** Creates a read error. */
  constructor(
    source: string,
    offset: number,
    length: number,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(
      "READ_FAILED",
      offset < 0
        ? `Cannot open ${source}: ${reason}`
        : `Cannot read ${source}: ${reason} at byte 0x${offset.toString(16)} (${length} bytes)`,
      options,
    );
    this.name = "ReadError";
    this.source = source;
    this.offset = offset;
    this.length = length;
  }
}

/**
 * Writing the destination failed. `code` is `NO_SPACE` when the device or file system is full.
 *
 * @example
 * ```ts
 * import { WriteError } from "./errors.ts";
 * const e = new WriteError("out.img", 0, "No space left on device", true);
 * console.assert(e.code === "NO_SPACE");
 * ```
 */
export class WriteError extends FsimageError {
  /** The sink's name. */
  readonly sink: string;
  /** Byte offset of the failed write; -1 when the sink could not be opened. */
  readonly offset: number;
  /** Creates a write error. */
  constructor(
    sink: string,
    offset: number,
    reason: string,
    noSpace = false,
    options?: ErrorOptions,
  ) {
    super(
      noSpace ? "NO_SPACE" : "WRITE_FAILED",
      offset < 0
        ? `Cannot open ${sink}: ${reason}`
        : `Cannot write ${sink}: ${reason} at byte 0x${offset.toString(16)}`,
      options,
    );
    this.name = "WriteError";
    this.sink = sink;
    this.offset = offset;
  }
}

/**
 * A hostile input asked for more than an independently computed cap allows (a table larger
 * than the image, a tree deeper than any valid one).
 *
 * @example
 * ```ts
 * import { LimitExceededError } from "./errors.ts";
 * const e = new LimitExceededError("QCOW2 L1 table of 2^40 entries exceeds the cap of 2^25");
 * console.assert(e.code === "LIMIT_EXCEEDED");
 * ```
 */
export class LimitExceededError extends FsimageError {
  /** Creates the error. */
  constructor(message: string) {
    super("LIMIT_EXCEEDED", message);
    this.name = "LimitExceededError";
  }
}
