/**
 * Adapters from files, block devices, stdin and stdout to {@linkcode Source} and
 * {@linkcode Sink}. Named paths are opened as `Deno.FsFile`s (seek + read/write), which needs
 * no Node compatibility layer — loading that is most of a short run's start-up time. Standard
 * input and output are descriptors 0 and 1, which only `node:fs` can read, write, stat and
 * truncate positionally (a redirected device needs no permission); `node:fs` is loaded on
 * first use for them only. Both are wrapped in a {@linkcode FileHandle} whose
 * {@linkcode FileInfo} is taken once at open time, so everything keeps working after the CLI
 * has revoked every permission (a `Deno.FsFile` can no longer `stat` then).
 *
 * @module
 */
import { ReadError, WriteError } from "../errors.ts";
import { nodeFs } from "../_internal/node_builtin.ts";
import type { SequentialSource, Sink, SinkKind, Source } from "./types.ts";

/** What a file descriptor refers to. */
export type FdKind = "file" | "device" | "pipe" | "char" | "directory" | "other";

/** What an open file is, from one `fstat` when it was opened. */
export interface FileInfo {
  /** The kind of file. */
  readonly kind: FdKind;
  /** A regular file's length, a block device's capacity, 0 otherwise. */
  readonly size: number;
  /** `st_dev`: the device holding the file. */
  readonly dev: number;
  /** `st_ino`. */
  readonly ino: number;
  /** `st_rdev`: a device file's device number (0 otherwise). */
  readonly rdev: number;
}

/**
 * An open file with positional access. `offset` `null` means "at the current position"
 * (pipes and terminals). Errors are thrown as the runtime reports them (with their `code`).
 */
export interface FileHandle {
  /** What the file was when it was opened. */
  readonly info: FileInfo;
  /** Reads up to `buf.length` bytes at `offset`; returns the count, 0 at the end. */
  read(buf: Uint8Array, offset: number | null): number;
  /** Writes up to `data.length` bytes at `offset`; returns the count (may be short). */
  write(data: Uint8Array, offset: number | null): number;
  /** Sets the file's length. */
  truncate(length: number): void;
  /** Flushes to stable storage. */
  sync(): void;
  /** `fdatasync` without blocking the caller. */
  syncDataAsync(): Promise<void>;
  /** `st_blocks` now (needs `stat`, so it fails once permissions are dropped). */
  allocatedBlocks(): number;
  /** Closes the file. */
  close(): void;
}

function kindOf(st: {
  isFile: boolean | null;
  isBlockDevice: boolean | null;
  isFifo: boolean | null;
  isSocket: boolean | null;
  isCharDevice: boolean | null;
  isDirectory: boolean | null;
}): FdKind {
  if (st.isFile) return "file";
  if (st.isBlockDevice) return "device";
  if (st.isFifo || st.isSocket) return "pipe";
  if (st.isCharDevice) return "char";
  if (st.isDirectory) return "directory";
  return "other";
}

/** A `Deno.FsFile` as a {@linkcode FileHandle}. */
class DenoFileHandle implements FileHandle {
  readonly info: FileInfo;
  #file: Deno.FsFile;
  constructor(file: Deno.FsFile) {
    this.#file = file;
    const st = file.statSync();
    const kind = kindOf(st);
    let size = 0;
    if (kind === "file") size = st.size;
    else if (kind === "device") size = file.seekSync(0, Deno.SeekMode.End);
    this.info = { kind, size, dev: st.dev ?? 0, ino: st.ino ?? 0, rdev: st.rdev ?? 0 };
  }
  read(buf: Uint8Array, offset: number | null): number {
    if (offset !== null) this.#file.seekSync(offset, Deno.SeekMode.Start);
    return this.#file.readSync(buf) ?? 0;
  }
  write(data: Uint8Array, offset: number | null): number {
    if (offset !== null) this.#file.seekSync(offset, Deno.SeekMode.Start);
    return this.#file.writeSync(data);
  }
  truncate(length: number): void {
    this.#file.truncateSync(length);
  }
  sync(): void {
    this.#file.syncSync();
  }
  syncDataAsync(): Promise<void> {
    return this.#file.syncData();
  }
  allocatedBlocks(): number {
    return this.#file.statSync().blocks ?? 0;
  }
  close(): void {
    this.#file.close();
  }
}

/** A `node:fs` descriptor as a {@linkcode FileHandle}. */
class NodeFdHandle implements FileHandle {
  readonly info: FileInfo;
  #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
    const st = nodeFs().fstatSync(fd);
    const kind = kindOf({
      isFile: st.isFile(),
      isBlockDevice: st.isBlockDevice(),
      isFifo: st.isFIFO(),
      isSocket: st.isSocket(),
      isCharDevice: st.isCharacterDevice(),
      isDirectory: st.isDirectory(),
    });
    const size = kind === "file" ? st.size : kind === "device" ? probeSize(fd) : 0;
    this.info = { kind, size, dev: st.dev, ino: st.ino, rdev: st.rdev ?? 0 };
  }
  read(buf: Uint8Array, offset: number | null): number {
    return nodeFs().readSync(this.#fd, buf, 0, buf.length, offset);
  }
  write(data: Uint8Array, offset: number | null): number {
    return offset === null
      ? nodeFs().writeSync(this.#fd, data, 0, data.length)
      : nodeFs().writeSync(this.#fd, data, 0, data.length, offset);
  }
  truncate(length: number): void {
    nodeFs().ftruncateSync(this.#fd, length);
  }
  sync(): void {
    nodeFs().fsyncSync(this.#fd);
  }
  syncDataAsync(): Promise<void> {
    return new Promise((resolve, reject) =>
      nodeFs().fdatasync(this.#fd, (e) => e ? reject(e) : resolve())
    );
  }
  allocatedBlocks(): number {
    return nodeFs().fstatSync(this.#fd).blocks ?? 0;
  }
  close(): void {
    nodeFs().closeSync(this.#fd);
  }
}

/**
 * Wraps an open `Deno.FsFile` (taking it over: closing the handle closes the file). The file
 * is stat'ed now, so call it before permissions are dropped.
 *
 * @example
 * ```ts ignore
 * import { FdSource, fileHandle } from "./file.ts";
 * using src = new FdSource(fileHandle(Deno.openSync("disk.img")), "disk.img");
 * ```
 */
export function fileHandle(file: Deno.FsFile): FileHandle {
  return new DenoFileHandle(file);
}

/**
 * Wraps a raw file descriptor (0 and 1 are the ones the CLI uses) through `node:fs`, which is
 * loaded on the first call.
 */
export function fdHandle(fd: number): FileHandle {
  return new NodeFdHandle(fd);
}

/**
 * Opens `path` as a {@linkcode FileHandle} with `Deno.openSync`'s options. A file opened for
 * reading is a `Deno.FsFile`; a write-only one goes through `node:fs` (loaded then), because
 * Deno refuses to `stat` a file it may not read (`--allow-write=DST` alone), and the kind,
 * size and inode of the output are needed. Throws the runtime's error (with its `code`).
 *
 * @example
 * ```ts ignore
 * import { FdSink, openFileHandle } from "./file.ts";
 * const out = new FdSink(openFileHandle("out.raw", { write: true, create: true }), "out.raw");
 * ```
 */
export function openFileHandle(path: string, options: Deno.OpenOptions): FileHandle {
  if (options.read || (!options.write && !options.append)) {
    const file = Deno.openSync(path, options);
    try {
      return new DenoFileHandle(file);
    } catch (e) {
      file.close();
      throw e;
    }
  }
  const fs = nodeFs();
  const c = fs.constants;
  let flags = c.O_WRONLY;
  if (options.append) flags |= c.O_APPEND;
  if (options.createNew) flags |= c.O_CREAT | c.O_EXCL;
  else if (options.create) flags |= c.O_CREAT;
  if (options.truncate && !options.createNew) flags |= c.O_TRUNC;
  const fd = fs.openSync(path, flags, options.mode ?? 0o666);
  try {
    return new NodeFdHandle(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Classifies an open descriptor with `fstat` (loads `node:fs`). */
export function fdKind(fd: number): FdKind {
  return new NodeFdHandle(fd).info.kind;
}

/** The reason of a runtime error, without Deno's "(os error N): open 'x'" or Node's "EIO: ". */
function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/: \w+ '.*'$/, "").replace(/\s*\(os error \d+\)$/, "").replace(
    /^[A-Z]+: /,
    "",
  ).replace(/, (p?read|p?write).*$/, "");
}

function isNoSpace(e: unknown): boolean {
  const m = e instanceof Error ? e.message : String(e);
  return (e as { code?: string })?.code === "ENOSPC" || /No space left/i.test(m);
}

/**
 * Finds the size of a seekable descriptor whose `fstat` says 0 (a block device) by a binary
 * search with one-byte positional reads; needs no permission and no ioctl (loads `node:fs`).
 */
export function probeSize(fd: number): number {
  const fs = nodeFs();
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

function toHandle(h: FileHandle | number): FileHandle {
  return typeof h === "number" ? fdHandle(h) : h;
}

/**
 * A positional source over an open file (a regular file or a block device).
 *
 * @example
 * ```ts ignore
 * import { openSource } from "./file.ts";
 * using src = openSource("disk.img");
 * console.log(src.size, src.info.kind);
 * ```
 */
export class FdSource implements Source {
  /** A name for messages. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** "file" or "device". */
  readonly kind: "file" | "device";
  /** What the file was when it was opened (device and inode numbers). */
  readonly info: FileInfo;
  #handle: FileHandle;
  #owned: boolean;
  #closed = false;
  /**
   * Wraps a handle (or a raw descriptor, through `node:fs`); when `owned`,
   * {@linkcode FdSource.close} closes it.
   */
  constructor(handle: FileHandle | number, name: string, options: { owned?: boolean } = {}) {
    const h = toHandle(handle);
    const kind = h.info.kind;
    if (kind === "directory") throw new ReadError(name, 0, 0, "Is a directory");
    if (kind !== "file" && kind !== "device") {
      throw new ReadError(name, 0, 0, `not a file or block device (${kind})`);
    }
    this.#handle = h;
    this.name = name;
    this.kind = kind;
    this.info = h.info;
    this.size = h.info.size;
    this.#owned = options.owned ?? true;
  }
  /** Positional read; short only at the end. */
  readAt(offset: number, buf: Uint8Array): number {
    return readFullyAt(this.#handle, this.name, offset, buf);
  }
  /** Closes the file if owned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) this.#handle.close();
  }
  /** Closes on `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function readFullyAt(h: FileHandle, name: string, offset: number, buf: Uint8Array): number {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = h.read(buf.subarray(done), offset + done);
    } catch (e) {
      throw new ReadError(name, offset + done, buf.length - done, reason(e), { cause: e });
    }
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * Opens a file or block device read-only as a {@linkcode Source}. A block device's size is
 * its end offset, since `stat` reports 0.
 */
export function openSource(path: string): FdSource {
  let h: FileHandle;
  try {
    h = openFileHandle(path, { read: true });
  } catch (e) {
    throw new ReadError(path, -1, 0, reason(e), { cause: e });
  }
  try {
    return new FdSource(h, path);
  } catch (e) {
    h.close();
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

/**
 * The largest single write into a pipe. Measured here (Linux 6.18, a 1.7 GB stream into
 * `| cat > /dev/null`): 4 KiB writes took 0.75-0.87 s, 64 KiB ~1.0 s and 4 MiB ~2.0 s, most of
 * it system time: with big writes the writer fills the pipe and sleeps, and the two processes
 * take turns instead of running side by side. `dd bs=4K` and `bs=4M` differ the same way.
 */
const PIPE_WRITE = 4096;

/** A sink over an open file: a regular file, a block device, or a pipe/terminal. */
export class FdSink implements Sink {
  /** A name for messages. */
  readonly name: string;
  /** How writes behave. */
  readonly kind: SinkKind;
  /** Whether the path did not exist before it was opened. */
  readonly created: boolean;
  /** What the file was when it was opened (device and inode numbers). */
  readonly info: FileInfo;
  #handle: FileHandle;
  #size: number;
  #owned: boolean;
  #pipe: boolean;
  #closed = false;
  /**
   * Wraps a handle (or a raw descriptor, through `node:fs`); a regular file or a block device
   * is positional, anything else is a stream.
   */
  constructor(
    handle: FileHandle | number,
    name: string,
    options: { owned?: boolean; created?: boolean } = {},
  ) {
    const h = toHandle(handle);
    const k = h.info.kind;
    if (k === "directory") throw new WriteError(name, 0, "Is a directory");
    this.#handle = h;
    this.name = name;
    this.info = h.info;
    this.kind = k === "file" ? "file" : k === "device" ? "device" : "stream";
    this.#size = k === "file" || k === "device" ? h.info.size : 0;
    this.#owned = options.owned ?? true;
    this.#pipe = k === "pipe";
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
    const stream = this.kind === "stream";
    const piece = this.#pipe ? PIPE_WRITE : data.length;
    let done = 0;
    while (done < data.length) {
      let n: number;
      try {
        const part = data.subarray(done, Math.min(data.length, done + piece));
        n = this.#handle.write(part, stream ? null : offset + done);
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
    return readFullyAt(this.#handle, this.name, offset, buf);
  }
  /** Sets a regular file's length (extends with a hole, or shrinks). */
  truncate(length: number): void {
    if (this.kind !== "file") throw new TypeError(`Cannot truncate ${this.name} (${this.kind})`);
    try {
      this.#handle.truncate(length);
    } catch (e) {
      throw new WriteError(this.name, length, reason(e), isNoSpace(e), { cause: e });
    }
    this.#size = length;
  }
  /** fsync; ignored on pipes and terminals. */
  sync(): void {
    if (this.kind === "stream") return;
    try {
      this.#handle.sync();
    } catch (e) {
      throw new WriteError(this.name, this.#size, reason(e), isNoSpace(e), { cause: e });
    }
  }
  /**
   * Starts `fdatasync` on a worker thread and resolves when it is done (a no-op on pipes);
   * rejects with a {@linkcode WriteError}. Works after the permissions are dropped.
   */
  async syncDataAsync(): Promise<void> {
    if (this.kind === "stream") return;
    try {
      await this.#handle.syncDataAsync();
    } catch (e) {
      throw new WriteError(this.name, this.#size, reason(e), isNoSpace(e), { cause: e });
    }
  }
  /**
   * The blocks the file occupies now (`st_blocks`); needs `stat`, so only before the
   * permissions are dropped.
   */
  allocatedBlocks(): number {
    return this.#handle.allocatedBlocks();
  }
  /** Closes the file if owned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) this.#handle.close();
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
  let existed = true;
  if (mode === "create" || mode === "truncate") {
    try {
      Deno.lstatSync(path);
    } catch {
      existed = false;
    }
  } else if (mode === "create-new") existed = false;
  const how: Deno.OpenOptions = {
    write: true,
    create: mode !== "existing",
    createNew: mode === "create-new",
    truncate: mode === "truncate",
    mode: options.perm ?? 0o644,
  };
  let h: FileHandle;
  try {
    // Read-write when allowed (devices need it to find their size, -c and moves read back);
    // write-only when Deno grants only --allow-write on the path.
    let read = true;
    try {
      read = Deno.permissions.querySync({ name: "read", path }).state === "granted";
    } catch {
      // try read-write
    }
    if (!read && options.readBack) read = true; // fails with the missing permission's name
    h = openFileHandle(path, { ...how, read });
  } catch (e) {
    throw new WriteError(path, -1, reason(e), isNoSpace(e), { cause: e });
  }
  try {
    return new FdSink(h, path, { created: !existed });
  } catch (e) {
    h.close();
    throw e;
  }
}

/**
 * Standard input as a source: positional when stdin is a regular file or a block device
 * (`fsimage e2image -r - out.raw < /dev/sda1` needs no permission), sequential otherwise.
 * Loads `node:fs` (fd 0 can only be stat'ed and read positionally through it).
 */
export function stdinSource(): FdSource | StdinStream {
  const h = fdHandle(0);
  const k = h.info.kind;
  if (k === "file" || k === "device") return new FdSource(h, "stdin", { owned: false });
  return new StdinStream();
}

/** Standard input read sequentially (a pipe or terminal). */
export class StdinStream implements SequentialSource {
  /** Always "stdin". */
  readonly name = "stdin";
  /** Reads up to `p.length` bytes; `null` at end of input. */
  readSync(p: Uint8Array): number | null {
    const fs = nodeFs();
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
 * a regular file, a `"device"` sink for a block device, and a `"stream"` otherwise. Loads
 * `node:fs`.
 */
export function stdoutSink(): FdSink {
  return new FdSink(fdHandle(1), "stdout", { owned: false });
}
