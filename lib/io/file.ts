/**
 * Adapters from files, block devices, stdin and stdout to {@linkcode Source} and
 * {@linkcode Sink}. They use `node:fs` file descriptors so that reads and writes are positional
 * (`pread`/`pwrite`), work on fd 0 and 1 without any Deno permission (a device redirected to
 * stdin), and keep working after the CLI has revoked every permission.
 *
 * @module
 */
import * as fs from "node:fs";
import { ReadError, WriteError } from "../errors.ts";
import type { SequentialSource, Sink, SinkKind, Source } from "./types.ts";

/** What a file descriptor refers to. */
export type FdKind = "file" | "device" | "pipe" | "char" | "directory" | "other";

/** Classifies an open descriptor with `fstat`. */
export function fdKind(fd: number): FdKind {
  const st = fs.fstatSync(fd);
  if (st.isFile()) return "file";
  if (st.isBlockDevice()) return "device";
  if (st.isFIFO() || st.isSocket()) return "pipe";
  if (st.isCharacterDevice()) return "char";
  if (st.isDirectory()) return "directory";
  return "other";
}

function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\(os error \d+\)$/, "").replace(/^[A-Z]+: /, "").replace(
    /, (p?read|p?write).*$/,
    "",
  );
}

function isNoSpace(e: unknown): boolean {
  const m = e instanceof Error ? e.message : String(e);
  return (e as { code?: string })?.code === "ENOSPC" || /No space left/i.test(m);
}

/**
 * Finds the size of a seekable descriptor whose `fstat` says 0 (a block device) by a binary
 * search with one-byte positional reads; needs no permission and no ioctl.
 */
export function probeSize(fd: number): number {
  const one = new Uint8Array(1);
  const has = (pos: number) => {
    try {
      return fs.readSync(fd, one, 0, 1, pos) === 1;
    } catch {
      return false;
    }
  };
  if (!has(0)) return 0;
  let lo = 0; // has(lo) is true
  let hi = 1;
  while (has(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > Number.MAX_SAFE_INTEGER / 2) break;
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (has(mid)) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}

/**
 * A positional source over an open descriptor (a regular file or a block device).
 *
 * @example
 * ```ts ignore
 * import { openSource } from "./file.ts";
 * using src = openSource("disk.img");
 * console.log(src.size);
 * ```
 */
export class FdSource implements Source {
  /** The descriptor. */
  readonly fd: number;
  /** A name for messages. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** "file" or "device". */
  readonly kind: "file" | "device";
  #owned: boolean;
  #closed = false;
  /** Wraps `fd`; when `owned`, {@linkcode FdSource.close} closes it. */
  constructor(fd: number, name: string, options: { owned?: boolean } = {}) {
    const kind = fdKind(fd);
    if (kind === "directory") throw new ReadError(name, 0, 0, "Is a directory");
    if (kind !== "file" && kind !== "device") {
      throw new ReadError(name, 0, 0, `not a file or block device (${kind})`);
    }
    this.fd = fd;
    this.name = name;
    this.kind = kind;
    this.size = kind === "file" ? fs.fstatSync(fd).size : probeSize(fd);
    this.#owned = options.owned ?? true;
  }
  /** Positional read; short only at the end. */
  readAt(offset: number, buf: Uint8Array): number {
    let done = 0;
    while (done < buf.length) {
      let n: number;
      try {
        n = fs.readSync(this.fd, buf, done, buf.length - done, offset + done);
      } catch (e) {
        throw new ReadError(this.name, offset + done, buf.length - done, reason(e), { cause: e });
      }
      if (n === 0) break;
      done += n;
    }
    return done;
  }
  /** Closes the descriptor if owned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) fs.closeSync(this.fd);
  }
  /** Closes on `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a file or block device read-only as a {@linkcode Source}. A block device's size is
 * found by probing, since `stat` reports 0.
 */
export function openSource(path: string): FdSource {
  let fd: number;
  try {
    fd = fs.openSync(path, "r");
  } catch (e) {
    throw new ReadError(path, -1, 0, reason(e), { cause: e });
  }
  try {
    return new FdSource(fd, path);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** How {@linkcode openSink} opens its path. */
export type OpenSinkMode =
  /** Create; fail if it exists (O_EXCL). */
  | "create-new"
  /** Create if missing, keep existing contents (O_CREAT). */
  | "create"
  /** Create if missing, empty it if present (O_CREAT|O_TRUNC; no-op on devices). */
  | "truncate"
  /** Must exist (a device, or a file to update in place). */
  | "existing";

/** A sink over a descriptor: a regular file, a block device, or a pipe/terminal. */
export class FdSink implements Sink {
  /** The descriptor. */
  readonly fd: number;
  /** A name for messages. */
  readonly name: string;
  /** How writes behave. */
  readonly kind: SinkKind;
  /** Whether the path did not exist before it was opened. */
  readonly created: boolean;
  #size: number;
  #owned: boolean;
  #closed = false;
  /** Wraps `fd`; a regular file or a block device is positional, anything else is a stream. */
  constructor(fd: number, name: string, options: { owned?: boolean; created?: boolean } = {}) {
    const k = fdKind(fd);
    if (k === "directory") throw new WriteError(name, 0, "Is a directory");
    this.fd = fd;
    this.name = name;
    this.kind = k === "file" ? "file" : k === "device" ? "device" : "stream";
    this.#size = k === "file" ? fs.fstatSync(fd).size : k === "device" ? probeSize(fd) : 0;
    this.#owned = options.owned ?? true;
    this.created = options.created ?? false;
  }
  /** Length (file), capacity (device) or bytes written (stream). */
  get size(): number {
    return this.#size;
  }
  /** Writes all of `data` at `offset`. */
  writeAt(offset: number, data: Uint8Array): void {
    if (this.kind === "stream" && offset !== this.#size) {
      throw new RangeError(`Stream ${this.name} written at ${offset}, expected ${this.#size}`);
    }
    if (this.kind === "device" && offset + data.length > this.#size) {
      throw new RangeError(
        `Write of ${data.length} bytes at ${offset} passes the end of ${this.name} (${this.#size} bytes)`,
      );
    }
    let done = 0;
    while (done < data.length) {
      let n: number;
      try {
        n = this.kind === "stream"
          ? fs.writeSync(this.fd, data, done, data.length - done)
          : fs.writeSync(this.fd, data, done, data.length - done, offset + done);
      } catch (e) {
        throw new WriteError(this.name, offset + done, reason(e), isNoSpace(e), { cause: e });
      }
      if (n <= 0) throw new WriteError(this.name, offset + done, "short write", true);
      done += n;
    }
    const end = offset + data.length;
    if (this.kind !== "device" && end > this.#size) this.#size = end;
  }
  /** Reads back from a file or device. */
  readAt(offset: number, buf: Uint8Array): number {
    if (this.kind === "stream") throw new TypeError(`Cannot read back from stream ${this.name}`);
    let done = 0;
    while (done < buf.length) {
      let n: number;
      try {
        n = fs.readSync(this.fd, buf, done, buf.length - done, offset + done);
      } catch (e) {
        throw new ReadError(this.name, offset + done, buf.length - done, reason(e), { cause: e });
      }
      if (n === 0) break;
      done += n;
    }
    return done;
  }
  /** Sets a regular file's length (extends with a hole, or shrinks). */
  truncate(length: number): void {
    if (this.kind !== "file") throw new TypeError(`Cannot truncate ${this.name} (${this.kind})`);
    try {
      fs.ftruncateSync(this.fd, length);
    } catch (e) {
      throw new WriteError(this.name, length, reason(e), isNoSpace(e), { cause: e });
    }
    this.#size = length;
  }
  /** fsync; ignored on pipes and terminals. */
  sync(): void {
    if (this.kind === "stream") return;
    try {
      fs.fsyncSync(this.fd);
    } catch (e) {
      throw new WriteError(this.name, this.#size, reason(e), isNoSpace(e), { cause: e });
    }
  }
  /** Closes the descriptor if owned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) fs.closeSync(this.fd);
  }
  /** Closes on `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens `path` for writing as a {@linkcode Sink}. `mode` says whether it may exist; `perm`
 * is the creation mode (default 0o644, subject to the umask). The sink is opened read-write
 * when permitted; with only write permission it is write-only, unless `readBack` demands
 * reading (check-before-write, in-place moves), in which case the open fails.
 *
 * @example
 * ```ts ignore
 * import { openSink } from "./file.ts";
 * using out = openSink("out.raw", { mode: "create-new" });
 * out.writeAt(0, new Uint8Array(512));
 * ```
 */
export function openSink(
  path: string,
  options: { mode?: OpenSinkMode; perm?: number; readBack?: boolean } = {},
): FdSink {
  const mode = options.mode ?? "create";
  const c = fs.constants;
  let flags = 0;
  if (mode !== "existing") flags |= c.O_CREAT;
  if (mode === "create-new") flags |= c.O_EXCL;
  if (mode === "truncate") flags |= c.O_TRUNC;
  let existed = true;
  if (mode === "create" || mode === "truncate") {
    try {
      fs.lstatSync(path);
    } catch {
      existed = false;
    }
  } else if (mode === "create-new") existed = false;
  let fd: number;
  try {
    // Read-write when allowed (devices need it to find their size, -c and moves read back);
    // write-only when Deno grants only --allow-write on the path.
    try {
      fd = fs.openSync(path, flags | c.O_RDWR, options.perm ?? 0o644);
    } catch (e) {
      if ((e as Error)?.name !== "NotCapable" || options.readBack) throw e;
      fd = fs.openSync(path, flags | c.O_WRONLY, options.perm ?? 0o644);
    }
  } catch (e) {
    throw new WriteError(path, -1, reason(e), isNoSpace(e), { cause: e });
  }
  try {
    return new FdSink(fd, path, { created: !existed });
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * Standard input as a source: positional when stdin is a regular file or a block device
 * (`fsimage e2image -r - out.raw < /dev/sda1` needs no permission), sequential otherwise.
 */
export function stdinSource(): FdSource | StdinStream {
  const k = fdKind(0);
  if (k === "file" || k === "device") return new FdSource(0, "stdin", { owned: false });
  return new StdinStream();
}

/** Standard input read sequentially (a pipe or terminal). */
export class StdinStream implements SequentialSource {
  /** Always "stdin". */
  readonly name = "stdin";
  /** Reads up to `p.length` bytes; `null` at end of input. */
  readSync(p: Uint8Array): number | null {
    for (;;) {
      try {
        const n = fs.readSync(0, p, 0, p.length, null);
        return n === 0 ? null : n;
      } catch (e) {
        if ((e as { code?: string }).code === "EAGAIN") continue;
        if ((e as { code?: string }).code === "EOF") return null;
        throw new ReadError("stdin", 0, p.length, reason(e), { cause: e });
      }
    }
  }
  /** Does nothing: fd 0 stays open. */
  close(): void {}
}

/**
 * Standard output as a sink: a `"file"` sink (sparse, positional) when stdout is redirected to
 * a regular file, a `"device"` sink for a block device, and a `"stream"` otherwise.
 */
export function stdoutSink(): FdSink {
  return new FdSink(1, "stdout", { owned: false });
}
