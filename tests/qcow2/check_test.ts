import assert from "node:assert/strict";
import { haveTool, mustRun, needs, run, tempDir } from "../_helpers.ts";
import { MemorySink, MemorySource, openSource } from "../../lib/io/mod.ts";
import { checkQcow2, writeQcow2 } from "../../lib/qcow2/mod.ts";
import { makePattern, qemuImg } from "./_util.ts";

/** qemu-img check's verdict in numbers. */
function qemuVerdict(path: string): { corruptions: number; leaks: number; end: number } {
  const r = run("qemu-img", ["check", "--output=json", path]);
  const j = JSON.parse(r.out);
  return { corruptions: j.corruptions ?? 0, leaks: j.leaks ?? 0, end: j["image-end-offset"] };
}

function assertSameVerdict(path: string, what: string): void {
  const q = qemuVerdict(path);
  using src = Object.assign(openSource(path), {});
  const ours = checkQcow2(src);
  assert.deepEqual(
    { corruptions: ours.corruptions, leaks: ours.leaks, end: ours.imageEndOffset },
    q,
    `${what}: ${ours.messages.slice(0, 5).join("; ")}`,
  );
}

Deno.test({
  name: "checkQcow2() agrees with qemu-img check on qemu, e2image and fsimage images",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const d = dir.path;
    Deno.writeFileSync(`${d}/p.raw`, makePattern(2 << 20, 12));
    const variants: string[][] = [
      [],
      ["-c"],
      ["-c", "-o", "compression_type=zstd,cluster_size=4096"],
      ["-o", "cluster_size=512"],
      ["-o", "compat=0.10,cluster_size=4096"],
      ["-o", "refcount_bits=1"],
      ["-o", "refcount_bits=2"],
      ["-o", "refcount_bits=64"],
      ["-o", "extended_l2=on"],
    ];
    for (const v of variants) {
      const img = `${d}/q.qcow2`;
      qemuImg("convert", "-f", "raw", "-O", "qcow2", ...v, `${d}/p.raw`, img);
      assertSameVerdict(img, v.join(" ") || "default");
    }
    // Snapshot: shared clusters with refcount 2.
    qemuImg("convert", "-f", "raw", "-O", "qcow2", `${d}/p.raw`, `${d}/s.qcow2`);
    qemuImg("snapshot", "-c", "s1", `${d}/s.qcow2`);
    if (haveTool("qemu-io")) {
      mustRun("qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 0 64k", `${d}/s.qcow2`]);
    }
    assertSameVerdict(`${d}/s.qcow2`, "snapshot");
    // Ours: clean.
    const raw = makePattern(2 << 20, 13);
    for (const cs of [512, 4096, 65536]) {
      const out = new MemorySink();
      writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: raw.length }], {
        virtualSize: raw.length,
        clusterSize: cs,
      });
      Deno.writeFileSync(`${d}/o.qcow2`, out.bytes());
      assertSameVerdict(`${d}/o.qcow2`, `ours ${cs}`);
      const r = checkQcow2(new MemorySource(out.bytes()));
      assert.equal(r.corruptions + r.leaks, 0);
    }
  },
});

Deno.test({
  name: "checkQcow2() finds e2image -Q's leaked clusters as qemu-img check does",
  ...needs("qemu-img", "e2image", "mkfs.ext4"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const d = dir.path;
    Deno.mkdirSync(`${d}/files`);
    for (let i = 0; i < 20; i++) {
      Deno.writeFileSync(`${d}/files/f${i}`, makePattern(3000 * i + 1, i));
    }
    for (const bs of ["1024", "4096"]) {
      mustRun("mkfs.ext4", ["-q", "-F", "-b", bs, "-d", `${d}/files`, `${d}/fs.raw`, "24M"]);
      for (const flag of ["-Q", "-Qa"]) {
        try {
          Deno.removeSync(`${d}/e.qcow2`);
        } catch { /* absent */ }
        mustRun("e2image", [flag, `${d}/fs.raw`, `${d}/e.qcow2`]);
        const q = qemuVerdict(`${d}/e.qcow2`);
        assert.ok(q.leaks >= 1);
        assertSameVerdict(`${d}/e.qcow2`, `e2image ${flag} bs ${bs}`);
      }
    }
  },
});

Deno.test({
  name: "checkQcow2() counts corruptions and leaks in damaged images as qemu-img check does",
  ...needs("qemu-img"),
  fn() {
    using dir = tempDir("fsimage-qcow2-");
    const d = dir.path;
    const raw = makePattern(1 << 20, 14);
    const out = new MemorySink();
    writeQcow2(new MemorySource(raw), out, [{ offset: 0, length: raw.length }], {
      virtualSize: raw.length,
      clusterSize: 4096,
    });
    const base = out.bytes().slice();
    const dv = new DataView(base.buffer);
    const l1 = Number(dv.getBigUint64(40));
    const rt = Number(dv.getBigUint64(48));
    const l2 = Number(dv.getBigUint64(l1) & 0x00fffffffffffe00n);
    const rb = Number(dv.getBigUint64(rt));
    let j = 0;
    while (dv.getBigUint64(l2 + j * 8) === 0n) j++;
    const e = l2 + j * 8;
    const mut: Array<[string, (v: DataView, b: Uint8Array) => void]> = [
      ["COPIED cleared on L1 and one L2 entry", (v) => {
        v.setUint8(l1, v.getUint8(l1) & 0x7f);
        v.setUint8(e, v.getUint8(e) & 0x7f);
      }],
      ["a leaked cluster", (v) => v.setUint16(rb + 2 * (base.length / 4096 - 1) - 2, 2)],
      ["a refcount of 0 for a data cluster", (v) => {
        const host = Number(v.getBigUint64(e) & 0x00fffffffffffe00n);
        v.setUint16(rb + 2 * (host / 4096), 0);
      }],
      ["two L2 entries sharing a cluster", (v) => v.setBigUint64(e + 8, v.getBigUint64(e))],
      ["L2 entry with reserved bits", (v) => v.setUint8(e + 7, v.getUint8(e + 7) | 2)],
      ["L1 entry with reserved bits", (v) => v.setUint8(l1 + 1, 1)],
      ["data past EOF", (v) => v.setBigUint64(e, (1n << 63n) | 0x10000000n)],
      ["unaligned data", (v) => v.setBigUint64(e, v.getBigUint64(e) + 512n)],
      ["refcount table entry with reserved bits", (v) => v.setUint8(rt + 7, 1)],
      ["truncated by two clusters", () => {}],
    ];
    for (const [name, f] of mut) {
      let b = base.slice();
      f(new DataView(b.buffer), b);
      if (name.startsWith("truncated")) b = b.subarray(0, b.length - 8192);
      Deno.writeFileSync(`${d}/m.qcow2`, b);
      assertSameVerdict(`${d}/m.qcow2`, name);
    }
  },
});
