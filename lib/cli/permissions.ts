/**
 * Least privilege for a disk tool under Deno. A run needs read on its sources and write on its
 * destinations, nothing else; these helpers check that without prompting, explain what is
 * missing with the exact flag, and revoke every permission once the files are open.
 *
 * Devices are special in Deno: any path under /dev, /proc or /sys opens only when every
 * permission is granted (`-A`), and `Deno.permissions.query` wrongly answers "granted" for a
 * scoped grant. So a device needs `-A` (we drop everything right after opening) or a shell
 * redirection to stdin, which needs no permission at all.
 *
 * @module
 */

const ALL = ["read", "write", "net", "env", "sys", "run", "ffi", "import"] as const;

/** True when `path` (after resolving it against the working directory) is under /dev, /proc or /sys. */
export function isSpecialPath(path: string): boolean {
  let abs = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  try {
    abs = Deno.realPathSync(abs);
  } catch {
    // Not readable or missing: judge by the name.
  }
  return /^\/(dev|proc|sys)(\/|$)/.test(abs);
}

/** True when every permission is granted unscoped (`-A`). */
export function allGranted(): boolean {
  return ALL.every((name) =>
    Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state === "granted"
  );
}

/**
 * Checks, without prompting, that `path` may be opened for `access`. Returns `undefined` when
 * it may, or a one-line explanation naming the flag to add.
 */
export function explainMissing(path: string, access: "read" | "write"): string | undefined {
  if (isSpecialPath(path)) {
    if (allGranted()) return undefined;
    return `${path} is a device or kernel file: Deno opens those only with -A (fsimage drops every ` +
      `permission once its files are open), or redirect it instead (< ${path} for input, > ${path} for output)`;
  }
  const st = Deno.permissions.querySync({ name: access, path }).state;
  if (st === "granted") return undefined;
  return `missing permission to ${access} ${path}: run again with --allow-${access}=${path}`;
}

/**
 * Revokes every permission. Descriptors already open keep working; any later open fails.
 * Call it once all sources, destinations and the mount table have been opened or read.
 */
export function dropAllPermissions(): void {
  for (const name of ALL) {
    try {
      Deno.permissions.revokeSync({ name } as Deno.PermissionDescriptor);
    } catch {
      // Nothing to revoke.
    }
  }
}

/** The state of every permission, for tests and `--debug`. */
export function permissionStates(): Record<string, string> {
  const r: Record<string, string> = {};
  for (const name of ALL) {
    r[name] = Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state;
  }
  return r;
}

/** An entry of the mount table. */
export interface MountEntry {
  /** The mounted device or file. */
  device: string;
  /** Where it is mounted. */
  mountPoint: string;
  /** Filesystem type. */
  type: string;
  /** True when mounted read-only. */
  readOnly: boolean;
}

/**
 * Reads /proc/self/mounts when allowed (it needs `-A` in Deno); returns `undefined` when the
 * table cannot be read, so the caller can say that the check was skipped.
 */
export function readMountTable(): MountEntry[] | undefined {
  if (!allGranted()) return undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/mounts");
  } catch {
    return undefined;
  }
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return text.split("\n").filter((l) => l).map((l) => {
    const [device = "", mountPoint = "", type = "", opts = ""] = l.split(" ");
    return {
      device: unescape(device),
      mountPoint: unescape(mountPoint),
      type,
      readOnly: opts.split(",").includes("ro"),
    };
  });
}
