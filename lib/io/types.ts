/**
 * The I/O seam: every walker reads a {@linkcode Source}, every writer writes a {@linkcode Sink}.
 * A file, a block device, a window at an offset, an in-memory buffer and a QCOW2 image are all
 * sources, so format code runs unchanged over each (the io_manager idea of e2fsprogs).
 *
 * The synchronous std-shaped interfaces {@linkcode ReaderSync}, {@linkcode WriterSync} and
 * {@linkcode SeekerSync} mirror `@std/io`, so `Deno.FsFile` and std objects plug in directly.
 *
 * @module
 */

/** Synchronous reader, shaped like `@std/io`'s `ReaderSync` (and `Deno.FsFile`). */
export interface ReaderSync {
  /** Reads up to `p.byteLength` bytes into `p`; returns the count, or `null` at end of file. */
  readSync(p: Uint8Array): number | null;
}

/** Synchronous writer, shaped like `@std/io`'s `WriterSync`. */
export interface WriterSync {
  /** Writes up to `p.byteLength` bytes; returns the count written (may be short). */
  writeSync(p: Uint8Array): number;
}

/** Seek origins, equal to `Deno.SeekMode`. */
export const SeekMode = { Start: 0, Current: 1, End: 2 } as const;

/** Synchronous seeker, shaped like `@std/io`'s `SeekerSync`. */
export interface SeekerSync {
  /** Moves the position; returns the new absolute position. */
  seekSync(offset: number | bigint, whence: 0 | 1 | 2): number;
}

/** A random-access byte source of known size. */
export interface Source {
  /** A name for messages: a path, "stdin", "memory". */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /**
   * Reads up to `buf.length` bytes at `offset` into `buf` and returns the count; fewer bytes
   * come back only at the end of the source. Throws {@linkcode ReadError} on an I/O error.
   */
  readAt(offset: number, buf: Uint8Array): number;
  /** Releases the underlying handle; idempotent. */
  close(): void;
}

/** What a sink writes to; it decides how holes are made. */
export type SinkKind = "file" | "device" | "stream";

/**
 * A destination. `"file"` sinks are seekable and can set their length (holes by seeking);
 * `"device"` sinks are seekable with a fixed capacity and no truncation; `"stream"` sinks are
 * append-only (a pipe): writes must arrive in order, and holes are written as zeros.
 */
export interface Sink {
  /** A name for messages. */
  readonly name: string;
  /** How the sink behaves (see {@linkcode SinkKind}). */
  readonly kind: SinkKind;
  /** file: current length; device: capacity; stream: bytes written so far. */
  readonly size: number;
  /**
   * Writes all of `data` at `offset`. A stream sink requires `offset === size`. Throws
   * {@linkcode WriteError} on failure, and `RangeError` for a write outside a device or window.
   */
  writeAt(offset: number, data: Uint8Array): void;
  /** Reads back from a seekable sink (for check-before-write); absent on streams. */
  readAt?(offset: number, buf: Uint8Array): number;
  /** Sets the length of a file sink (extends sparsely or shrinks); absent otherwise. */
  truncate?(length: number): void;
  /** Flushes to stable storage. */
  sync?(): void;
  /**
   * Starts flushing the data written so far to stable storage without blocking the caller
   * (`fdatasync` on a worker thread); resolves when done. Absent where it means nothing.
   */
  syncDataAsync?(): Promise<void>;
  /** Releases the underlying handle; idempotent. */
  close(): void;
}

/** A sequential byte source (a pipe), shaped like {@linkcode ReaderSync}. */
export interface SequentialSource extends ReaderSync {
  /** A name for messages. */
  readonly name: string;
  /** Releases the underlying handle; idempotent. */
  close(): void;
}
