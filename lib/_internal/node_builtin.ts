/**
 * `node:fs` and `node:zlib` loaded on first use, synchronously. A static `import` of either
 * costs every run of the CLI the start-up of Deno's Node compatibility layer (about 20–30 ms,
 * more than the rest of a metadata-only job), although most runs never need them: only
 * positional access to fd 0 and 1 needs `node:fs`, and only compressed QCOW2 clusters need
 * `node:zlib`. `process.getBuiltinModule` (Node ≥ 22.3, Deno 2) loads a built-in without an
 * `import`, so the synchronous call sites stay synchronous.
 *
 * @module
 */
import type * as NodeFs from "node:fs";
import type * as NodeZlib from "node:zlib";

/** The `node:fs` module's type. */
export type NodeFsModule = typeof NodeFs;
/** The `node:zlib` module's type. */
export type NodeZlibModule = typeof NodeZlib;

const loaded = new Set<string>();

function builtin<T>(id: string): T {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } })
    .process;
  const m = p?.getBuiltinModule?.(id);
  if (m === undefined || m === null) {
    throw new TypeError(`This runtime cannot load ${id} (process.getBuiltinModule is missing)`);
  }
  loaded.add(id);
  return m as T;
}

let fsModule: NodeFsModule | undefined;
let zlibModule: NodeZlibModule | undefined;

/**
 * `node:fs`, loaded on the first call.
 *
 * @example
 * ```ts
 * import { nodeFs } from "./node_builtin.ts";
 * console.assert(typeof nodeFs().readSync === "function");
 * ```
 */
export function nodeFs(): NodeFsModule {
  return fsModule ??= builtin<NodeFsModule>("node:fs");
}

/**
 * `node:zlib`, loaded on the first call.
 *
 * @example
 * ```ts
 * import { nodeZlib } from "./node_builtin.ts";
 * console.assert(typeof nodeZlib().inflateRawSync === "function");
 * ```
 */
export function nodeZlib(): NodeZlibModule {
  return zlibModule ??= builtin<NodeZlibModule>("node:zlib");
}

/**
 * The parts of `node:zlib` the QCOW2 codecs use, each loading the module on its first call:
 * a drop-in for `import * as zlib from "node:zlib"` that costs nothing until it is used.
 */
export const lazyZlib: {
  /** `zlib.deflateRawSync`. */
  deflateRawSync: NodeZlibModule["deflateRawSync"];
  /** `zlib.inflateRawSync`. */
  inflateRawSync: NodeZlibModule["inflateRawSync"];
  /** `zlib.zstdDecompressSync` where the runtime has it, else undefined. */
  readonly zstdDecompressSync: unknown;
} = {
  deflateRawSync: (buf, options) => nodeZlib().deflateRawSync(buf, options),
  inflateRawSync: (buf, options) => nodeZlib().inflateRawSync(buf, options),
  get zstdDecompressSync(): unknown {
    return (nodeZlib() as unknown as { zstdDecompressSync?: unknown }).zstdDecompressSync;
  },
};

/**
 * The built-ins loaded so far through this module (`"node:fs"`, `"node:zlib"`), for the tests
 * that prove a run did not need them.
 */
export function loadedNodeBuiltins(): string[] {
  return [...loaded].sort();
}
