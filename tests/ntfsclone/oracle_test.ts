/**
 * Differential tests against the real ntfsclone 2022.10.3: images and restores of small NTFS
 * volumes built with mkntfs + ntfscp at test time.
 */
import assert from "node:assert/strict";
import { openSink, openSource } from "../../lib/io/file.ts";
import { MemorySink, MemorySource } from "../../lib/io/memory.ts";
import { UnsupportedFeatureError } from "../../lib/errors.ts";
import {
  listNtfscloneClusters,
  NtfscloneDecoderStream,
  NtfscloneEncoderStream,
  NtfscloneImageReader,
  NtfscloneImageSource,
  parseNtfscloneHeader,
  restoreNtfsclone,
  saveImage,
} from "../../lib/ntfsclone/mod.ts";
import { isRoot, mustRun, needs, run, sha256, sha256File, tempDir } from "../_helpers.ts";
import { makeVolume, realSave, type VolumeOptions } from "./_volume.ts";
import { syntheticImage } from "./_util.ts";

const FILES: Array<[string, number, number]> = [
  ["small.bin", 3000, 1],
  ["medium.bin", 300_000, 2],
  ["large.bin", 1_500_000, 3],
];

/** [name, options, expected cluster size, expected nr_clusters]. */
const VOLUMES: Array<[string, VolumeOptions, number, number]> = [
  ["16 MiB, 4 KiB clusters", { size: 16 << 20, files: FILES }, 4096, 4095],
  ["12 MiB, 512-byte clusters", { size: 12 << 20, clusterSize: 512, files: FILES }, 512, 24575],
  ["16 MiB, 64 KiB clusters", { size: 16 << 20, clusterSize: 65536, files: FILES }, 65536, 255],
  // 32768 + 2 sectors: the NTFS has 32769 sectors, the backup-boot payload is 1 KiB.
  ["16 MiB + 1 KiB device", { size: (16 << 20) + 1024, files: FILES }, 4096, 4096],
  ["NTFS smaller than the device", { size: 16 << 20, sectors: 20000, files: FILES }, 4096, 2499],
  ["4096-byte sectors", { size: 16 << 20, sectorSize: 4096, files: FILES }, 4096, 4095],
];

function fifoReader(dir: string, image: string): { file: Deno.FsFile; done: () => void } {
  const fifo = `${dir}/pipe`;
  mustRun("mkfifo", [fifo]);
  const child = new Deno.Command("sh", {
    args: ["-c", `cat "$1" > "$2"`, "sh", image, fifo],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const file = Deno.openSync(fifo, { read: true });
  return {
    file,
    done: () => {
      file.close();
      child.status.then(() => {});
    },
  };
}

for (const [name, opts, cs, nr] of VOLUMES) {
  Deno.test({
    name: `ntfsclone image of a ${name} volume: saveImage is byte-identical, restore matches`,
    ...needs("mkntfs", "ntfscp", "ntfsclone"),
    async fn(t) {
      using dir = tempDir("fsimage-ntfsclone-");
      const vol = makeVolume(dir.path, "vol.img", opts);
      const real = realSave(vol, `${dir.path}/real.img`);
      const realBytes = Deno.readFileSync(real);

      await t.step("the real header parses to the volume's geometry", () => {
        const h = parseNtfscloneHeader(realBytes.subarray(0, 56));
        assert.equal(h.majorVersion, 10);
        assert.equal(h.minorVersion, 1);
        assert.equal(h.clusterSize, cs);
        assert.equal(h.nrClusters, nr);
        assert.equal(h.deviceSize, opts.size);
        assert.equal(h.offsetToImageData, 56);
        using f = Deno.openSync(real);
        const list = listNtfscloneClusters(f);
        const stored = list.used.reduce((n, e) => n + e.count, 0);
        assert.equal(stored, h.inuse + 1); // the backup-boot cluster is not counted in inuse
        assert.equal(list.used.at(-1)!.start + list.used.at(-1)!.count, nr + 1);
      });

      await t.step("saveImage with the real image's used set reproduces it byte for byte", () => {
        using f = Deno.openSync(real);
        const { used, header } = listNtfscloneClusters(f);
        const src = openSource(vol);
        const ours = `${dir.path}/ours.img`;
        const sink = openSink(ours, { mode: "truncate" });
        let progress = [0, 0];
        const r = saveImage(src, sink, used, header, {
          bufferSize: 1 << 20,
          onProgress: (d, n) => (progress = [d, n]),
        });
        sink.close();
        src.close();
        assert.equal(r.imageSize, realBytes.length);
        assert.equal(sha256File(ours), sha256(realBytes));
        assert.deepEqual(progress, [header.inuse + 1, header.inuse + 1]);
        // Saving to a stream gives the same bytes.
        const stream = new MemorySink({ kind: "stream" });
        saveImage(openSource(vol), stream, used, header);
        assert.equal(sha256(stream.bytes()), sha256(realBytes));
        // The real tool accepts our image.
        assert.equal(run("ntfsclone", ["-r", "-n", ours]).code, 0);
      });

      const realRaw = `${dir.path}/real.raw`;
      mustRun("ntfsclone", ["-q", "-r", "-O", realRaw, real]);
      const realRawHash = sha256File(realRaw);

      await t.step("restoreNtfsclone from a file equals ntfsclone --restore-image", () => {
        const out = `${dir.path}/ours.raw`;
        using f = Deno.openSync(real);
        const sink = openSink(out, { mode: "truncate" });
        let progress = [0, 0];
        const r = restoreNtfsclone(f, sink, { onProgress: (d, n) => (progress = [d, n]) });
        sink.close();
        assert.equal(Deno.statSync(out).size, Deno.statSync(realRaw).size);
        assert.equal(sha256File(out), realRawHash);
        assert.equal(r.end, Deno.statSync(realRaw).size);
        assert.equal(progress[0], progress[1]); // ends at 100 %, as ntfsclone's counter does
      });

      await t.step("restoreNtfsclone from a pipe equals it too", () => {
        const out = `${dir.path}/pipe.raw`;
        const p = fifoReader(dir.path, real);
        const sink = openSink(out, { mode: "truncate" });
        const reader = new NtfscloneImageReader(p.file, { name: "stdin" });
        restoreNtfsclone(reader, sink);
        sink.close();
        p.done();
        assert.equal(sha256File(out), realRawHash);
      });

      await t.step("restoreNtfsclone from the process's stdin equals it too", () => {
        const out = `${dir.path}/stdin.raw`;
        driver(["-", out], real);
        assert.equal(sha256File(out), realRawHash);
      });

      await t.step("restoreNtfsclone to a stream equals ntfsclone -r -o -", () => {
        const realOut = run("ntfsclone", ["-r", "-o", "-", real]);
        assert.equal(realOut.code, 0);
        const s = new MemorySink({ kind: "stream" });
        using f = Deno.openSync(real);
        restoreNtfsclone(f, s);
        assert.equal(s.size, realOut.stdout.length);
        assert.equal(sha256(s.bytes()), sha256(realOut.stdout));
      });
    },
  });
}

/** Rewrites a real image as a 10.0 image (no backup-boot record), legacy or extended one. */
function craft(real: Uint8Array, kind: "10.0" | "legacy" | "extended"): Uint8Array {
  const h = parseNtfscloneHeader(real.subarray(0, 56));
  const last = 1 + h.deviceSize - h.nrClusters * h.clusterSize; // the final NEXT record
  const body = real.subarray(
    56,
    kind === "10.0" ? real.length - Math.min(last, 1 + h.clusterSize) : real.length,
  );
  if (kind === "10.0") {
    const out = new Uint8Array(56 + body.length);
    out.set(real.subarray(0, 56));
    out[17] = 0;
    out.set(body, 56);
    return out;
  }
  if (kind === "legacy") {
    const out = new Uint8Array(46 + body.length);
    out.set(real.subarray(0, 46));
    out[16] = 3;
    out[17] = 1;
    out.set(body, 46);
    return out;
  }
  const out = new Uint8Array(64 + body.length);
  out.set(real.subarray(0, 56));
  out[17] = 7;
  out[0x2e] = 64;
  out.set(body, 64);
  return out;
}

Deno.test({
  name: "restoreNtfsclone of 10.0, legacy and extended-header images equals the real restore",
  ...needs("mkntfs", "ntfscp", "ntfsclone"),
  fn() {
    using dir = tempDir("fsimage-ntfsclone-");
    // The NTFS is smaller than the device, so the 10.0 image ends with a gap to nrClusters.
    const vol = makeVolume(dir.path, "vol.img", { size: 16 << 20, sectors: 20000, files: FILES });
    const real = Deno.readFileSync(realSave(vol, `${dir.path}/real.img`));
    for (const kind of ["10.0", "legacy", "extended"] as const) {
      const img = `${dir.path}/${kind}.img`;
      Deno.writeFileSync(img, craft(real, kind));
      const realRaw = `${dir.path}/${kind}.real.raw`;
      const rr = run("ntfsclone", ["-r", "-O", realRaw, img]);
      assert.equal(rr.code, 0, rr.err);
      assert.equal(
        (rr.out + rr.err).includes("Warning : no alternate boot sector in image"),
        kind === "10.0",
      );
      const out = `${dir.path}/${kind}.ours.raw`;
      using f = Deno.openSync(img);
      const sink = openSink(out, { mode: "truncate" });
      const r = restoreNtfsclone(f, sink);
      sink.close();
      assert.equal(r.missingBackupBoot, kind === "10.0");
      assert.equal(Deno.statSync(out).size, Deno.statSync(realRaw).size, kind);
      assert.equal(sha256File(out), sha256File(realRaw), kind);
    }
  },
});

Deno.test({
  name: "metadata images (-m -s, negative gaps): restore, stream refusal and re-encoding",
  ...needs("mkntfs", "ntfscp", "ntfsclone"),
  async fn() {
    using dir = tempDir("fsimage-ntfsclone-");
    const vol = makeVolume(dir.path, "vol.img", { size: 8 << 20, clusterSize: 1024, files: FILES });
    const meta = `${dir.path}/meta.img`;
    mustRun("ntfsclone", ["-q", "-m", "-s", "-O", meta, vol]);
    const bytes = Deno.readFileSync(meta);
    // It does go backwards.
    const r = new NtfscloneImageReader(memFile(bytes));
    let backwards = 0;
    for (let c = r.next(); c; c = r.next()) if (c.kind === "gap" && c.count < 0) backwards++;
    assert.ok(backwards > 0);
    // Restored to a file: equal to the real restore (later records win).
    const realRaw = `${dir.path}/real.raw`;
    mustRun("ntfsclone", ["-q", "-r", "-O", realRaw, meta]);
    const out = `${dir.path}/ours.raw`;
    const sink = openSink(out, { mode: "truncate" });
    restoreNtfsclone(memFile(bytes), sink);
    sink.close();
    assert.equal(sha256File(out), sha256File(realRaw));
    const src = NtfscloneImageSource.open(new MemorySource(bytes));
    const all = new Uint8Array(Deno.statSync(realRaw).size);
    src.readAt(0, all);
    assert.equal(sha256(all), sha256File(realRaw));
    // Refused on a stream by both.
    const real = run("ntfsclone", ["-r", "-o", "-", meta]);
    assert.equal(real.code, 1);
    assert.ok(real.err.includes("ERROR: Cannot restore a metadata image to stdout"));
    assert.throws(
      () => restoreNtfsclone(memFile(bytes), new MemorySink({ kind: "stream" })),
      (e: unknown) =>
        e instanceof UnsupportedFeatureError &&
        e.compat === "Cannot restore a metadata image to stdout",
    );
    // Decoding and re-encoding reproduces the exact command sequence.
    const again = await Array.fromAsync(
      ReadableStream.from([bytes.subarray(0, 1000), bytes.subarray(1000)])
        .pipeThrough(new NtfscloneDecoderStream())
        .pipeThrough(new NtfscloneEncoderStream()),
    );
    const joined = new Uint8Array(again.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of again) {
      joined.set(c, at);
      at += c.length;
    }
    assert.equal(sha256(joined), sha256(bytes));
  },
});

Deno.test({
  name: "the real ntfsclone restores images written by NtfscloneImageWriter",
  ...needs("ntfsclone"),
  fn() {
    using dir = tempDir("fsimage-ntfsclone-");
    for (const [seed, cs, extra] of [[1, 512, 512], [2, 4096, 1024], [3, 65536, 70000]]) {
      const { image } = syntheticImage(seed!, { clusterSize: cs, nrClusters: 60, extra });
      const img = `${dir.path}/syn${seed}.img`;
      Deno.writeFileSync(img, image);
      const realRaw = `${dir.path}/syn${seed}.real.raw`;
      const rr = run("ntfsclone", ["-r", "-O", realRaw, img]);
      assert.equal(rr.code, 0, rr.out + rr.err);
      const ours = new MemorySink();
      restoreNtfsclone(memFile(image), ours);
      assert.equal(sha256(ours.bytes()), sha256File(realRaw), `seed ${seed}`);
    }
  },
});

Deno.test({
  name: "corrupt images fail with ntfsclone's own messages",
  ...needs("mkntfs", "ntfsclone"),
  fn() {
    using dir = tempDir("fsimage-ntfsclone-");
    const vol = makeVolume(dir.path, "vol.img", { size: 8 << 20 });
    const real = Deno.readFileSync(realSave(vol, `${dir.path}/real.img`));
    // Find the first gap command.
    const r = new NtfscloneImageReader(memFile(real));
    let gapAt = -1;
    for (let at = r.offset, c = r.next(); c; at = r.offset, c = r.next()) {
      if (c.kind === "gap") {
        gapAt = at;
        break;
      }
    }
    assert.ok(gapAt > 0);
    const mutations: Array<[string, (b: Uint8Array) => void]> = [
      ["bad command", (b) => (b[gapAt] = 0xff)],
      ["zero gap", (b) => new DataView(b.buffer).setBigInt64(gapAt + 1, 0n, true)],
      ["gap past the end", (b) => new DataView(b.buffer).setBigInt64(gapAt + 1, 1n << 40n, true)],
      ["gap below zero", (b) => new DataView(b.buffer).setBigInt64(gapAt + 1, -(1n << 40n), true)],
      ["bad magic", (b) => (b[1] = 0x4e)],
    ];
    for (const [what, mutate] of mutations) {
      const b = real.slice();
      mutate(b);
      const path = `${dir.path}/bad.img`;
      Deno.writeFileSync(path, b);
      const rr = run("ntfsclone", ["-r", "-n", path]);
      let compat = "";
      try {
        restoreNtfsclone(memFile(b), null, { dryRun: true });
      } catch (e) {
        compat = (e as { details?: { compat?: string } }).details?.compat ?? "";
      }
      assert.ok(compat, what);
      assert.ok((rr.out + rr.err).includes(`ERROR: ${compat}`), `${what}: ${rr.out}${rr.err}`);
    }
  },
});

Deno.test({
  name: "restoreNtfsclone to a loop device equals ntfsclone -r -O /dev/loopN (gaps untouched)",
  ...needs("root", "losetup", "mkntfs", "ntfscp", "ntfsclone"),
  fn() {
    using dir = tempDir("fsimage-ntfsclone-");
    const vol = makeVolume(dir.path, "vol.img", { size: 16 << 20, files: FILES });
    const real = realSave(vol, `${dir.path}/real.img`);
    const backing = [`${dir.path}/a.dev`, `${dir.path}/b.dev`];
    for (const p of backing) Deno.writeFileSync(p, new Uint8Array(16 << 20).fill(0xaa));
    const loops: string[] = [];
    try {
      for (const p of backing) loops.push(mustRun("losetup", ["-f", "--show", p]).out.trim());
      mustRun("ntfsclone", ["-q", "-r", "-O", loops[0]!, real]);
      // Opening a device needs --allow-all in Deno, so the restore runs in a child process.
      const r = driver([real, loops[1]!, "device"]);
      assert.equal(JSON.parse(r).kind, "device");
    } finally {
      for (const l of loops) run("losetup", ["-d", l]);
    }
    assert.equal(sha256File(backing[1]!), sha256File(backing[0]!));
    assert.ok(isRoot());
  },
});

const DRIVER = new URL("./_restore_main.ts", import.meta.url).pathname;

function driver(args: string[], stdin?: string): string {
  return mustRunStdin(Deno.execPath(), ["run", "--no-prompt", "-A", DRIVER, ...args], stdin).out;
}

function mustRunStdin(cmd: string, args: string[], stdin?: string) {
  const r = run(cmd, args, stdin === undefined ? {} : { stdin });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.err}`);
  return r;
}

function memFile(bytes: Uint8Array) {
  let at = 0;
  return {
    readSync(p: Uint8Array): number | null {
      const n = Math.min(p.length, bytes.length - at);
      if (n <= 0) return null;
      p.set(bytes.subarray(at, at + n));
      at += n;
      return n;
    },
  };
}
