/**
 * `fsimage e2image` against the real e2image 1.47.0: command-line errors, raw images, normal
 * images, -I, permissions.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import * as fs from "node:fs";
import { BufferWriter } from "../../lib/cli/context.ts";
import { runE2image } from "../../lib/cli/e2image.ts";
import { needs, run, tempDir } from "../_helpers.ts";

/** Runs our e2image in-process; returns what the real tool's run() returns. */
export function ours(args: string[], programName = "e2image"): {
  code: number;
  out: string;
  err: string;
} {
  const stdout = new BufferWriter();
  const stderr = new BufferWriter();
  const code = runE2image(args, { programName, stdout, stderr, debug: false }, {
    dropPermissions: false,
    clock: () => 0,
    hostname: () => "testhost",
    mountTable: () => [],
  });
  return { code, out: stdout.text, err: stderr.text };
}

function real(args: string[], programName = "e2image"): { code: number; out: string; err: string } {
  const r = run("bash", ["-c", `exec -a '${programName}' e2image "$@"`, "bash", ...args]);
  return { code: r.code, out: r.out, err: r.err };
}

function makeFs(dir: string, name: string, args: string[], size: string): string {
  const path = `${dir}/${name}`;
  run("mkfs.ext4", [
    "-q",
    "-F",
    "-U",
    "11111111-2222-3333-4444-555555555555",
    "-E",
    "hash_seed=11111111-2222-3333-4444-555555555555",
    ...args,
    path,
    size,
  ], {
    env: { E2FSPROGS_FAKE_TIME: "1700000000" },
  });
  return path;
}

Deno.test(
  "e2image: command-line errors match the real tool (stdout, stderr, status)",
  needs("e2image", "mkfs.ext4"),
  () => {
    using tmp = tempDir("h2-cli-");
    const fsImg = makeFs(tmp.path, "fs.img", ["-b", "1024"], "8M");
    const o = `${tmp.path}/o`;
    const cases: string[][] = [
      [],
      ["-rQ", fsImg, o],
      ["-rr", fsImg, o],
      ["-a", fsImg, o],
      ["-a", fsImg],
      ["-b", "8193", fsImg, o],
      ["-b", "5", "-o", "1", fsImg],
      ["-Qo", "5", fsImg, o],
      ["-Q", "-o", "3", fsImg],
      ["-r", fsImg],
      ["-ro", "5", fsImg],
      ["-rO", "0x1", fsImg],
      ["-ro", "0", fsImg],
      ["-rI", fsImg, o],
      ["-I", "-r", "a", "b"],
      ["-x", fsImg, o],
      ["-r", fsImg, o, "-o"],
      ["--foo", "a", "b"],
      ["-o", "7", fsImg, o],
      ["-r", `${tmp.path}/missing`, o],
      ["-r", fsImg, o, "extra"],
    ];
    for (const args of cases) {
      for (const argv0 of ["e2image", "/usr/sbin/e2image"]) {
        try {
          fs.rmSync(o);
        } catch { /* absent */ }
        const want = real(args, argv0);
        const wantExists = fs.existsSync(o);
        try {
          fs.rmSync(o);
        } catch { /* absent */ }
        const got = ours(args, argv0);
        assertEquals(got, want, `e2image ${args.join(" ")} (argv0 ${argv0})`);
        assertEquals(fs.existsSync(o), wantExists, `output exists after ${args.join(" ")}`);
      }
    }
  },
);
