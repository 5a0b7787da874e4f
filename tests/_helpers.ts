/**
 * Shared test helpers: oracle detection, running tools, temporary directories, fixtures.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";

const toolCache = new Map<string, boolean>();

/** True when `name` is on PATH (checked once). */
export function haveTool(name: string): boolean {
  let ok = toolCache.get(name);
  if (ok === undefined) {
    try {
      ok = new Deno.Command("sh", {
        args: ["-c", `command -v ${name}`],
        stdout: "null",
        stderr: "null",
      })
        .outputSync().success;
    } catch {
      ok = false;
    }
    toolCache.set(name, ok);
  }
  return ok;
}

/** True when running as root (loop devices, mounts). */
export function isRoot(): boolean {
  try {
    return new TextDecoder().decode(new Deno.Command("id", { args: ["-u"] }).outputSync().stdout)
      .trim() === "0";
  } catch {
    return false;
  }
}

/**
 * Returns `Deno.test` options that skip (with a message on stderr, once) when any of `tools`
 * is missing. In CI every oracle is installed, so nothing is skipped there.
 */
export function needs(...tools: string[]): { ignore: boolean } {
  const missing = tools.filter((t) => t === "root" ? !isRoot() : !haveTool(t));
  if (missing.length && Deno.env.get("CI") === "true") {
    throw new Error(`CI must install the oracle tools, missing: ${missing.join(", ")}`);
  }
  if (missing.length) console.error(`skipping: needs ${missing.join(", ")}`);
  return { ignore: missing.length > 0 };
}

/** Result of {@linkcode run}. */
export interface RunResult {
  /** Exit status. */
  code: number;
  /** Standard output as bytes. */
  stdout: Uint8Array;
  /** Standard output decoded. */
  out: string;
  /** Standard error decoded. */
  err: string;
}

/** Runs a command synchronously and captures its output; `stdin` may be a file path. */
export function run(
  cmd: string,
  args: string[],
  options: { stdin?: string; cwd?: string; env?: Record<string, string> } = {},
): RunResult {
  if (options.stdin !== undefined) {
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    return run("sh", ["-c", `exec ${[cmd, ...args].map(q).join(" ")} < ${q(options.stdin)}`], {
      cwd: options.cwd,
      env: options.env,
    });
  }
  const o = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const dec = new TextDecoder();
  return { code: o.code, stdout: o.stdout, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** Runs a command and throws with its stderr when it fails. */
export function mustRun(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): RunResult {
  const r = run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.err}`);
  return r;
}

/** The repository root. */
export const ROOT: string = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The entry point the CLI tests run: main.ts, or the single-file bundle when FSIMAGE_ENTRY
 * names it (`deno task compile --bundle`, then `FSIMAGE_ENTRY=dist/fsimage.js deno task test`).
 */
export const MAIN: string = (() => {
  const e = Deno.env.get("FSIMAGE_ENTRY");
  return e ? (e.startsWith("/") ? e : `${ROOT}/${e}`) : `${ROOT}/main.ts`;
})();

/**
 * Runs `deno run <flags> main.ts <args>` (the CLI as a user runs it). `flags` default to
 * `--allow-read --allow-write`.
 */
export function runFsimage(
  args: string[],
  options: { flags?: string[]; stdin?: string; cwd?: string } = {},
): RunResult {
  const flags = options.flags ?? ["--allow-read", "--allow-write"];
  return run(Deno.execPath(), ["run", "--no-prompt", ...flags, MAIN, ...args], {
    stdin: options.stdin,
    cwd: options.cwd,
  });
}

/** A fresh temporary directory, removed by the returned disposer. */
export function tempDir(prefix = "fsimage-test-"): { path: string; [Symbol.dispose](): void } {
  const path = Deno.makeTempDirSync({ prefix });
  return {
    path,
    [Symbol.dispose]() {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch {
        // already gone
      }
    },
  };
}

/** Reads a committed fixture (`tests/fixtures/<rel>`), gunzipping `.gz` files. */
export function readFixture(rel: string): Uint8Array {
  const b = Deno.readFileSync(`${ROOT}/tests/fixtures/${rel}`);
  return rel.endsWith(".gz") ? new Uint8Array(gunzipSync(b)) : b;
}

/** Writes a committed fixture, decompressed, to `dest`; returns `dest`. */
export function extractFixture(rel: string, dest: string): string {
  Deno.writeFileSync(dest, readFixture(rel));
  return dest;
}

/** Hex SHA-256 of bytes. */
export function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Hex SHA-256 of a file, streamed. */
export function sha256File(path: string): string {
  const h = createHash("sha256");
  using f = Deno.openSync(path);
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = f.readSync(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

/** Allocated bytes of a file (st_blocks * 512), to check sparseness. */
export function allocatedBytes(path: string): number {
  return (Deno.statSync(path).blocks ?? 0) * 512;
}
