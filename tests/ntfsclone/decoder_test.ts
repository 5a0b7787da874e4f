import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { CorruptImageError } from "../../lib/errors.ts";
import { MemorySink } from "../../lib/io/memory.ts";
import {
  createNtfscloneHeader,
  encodeNtfscloneHeader,
  NtfscloneDecoderStream,
  type NtfscloneEncoderInput,
  NtfscloneEncoderStream,
  NtfscloneImageReader,
  NtfscloneImageWriter,
  type NtfscloneRecord,
} from "../../lib/ntfsclone/mod.ts";
import { memReader, prng, syntheticImage } from "./_util.ts";

function digest(records: NtfscloneRecord[]): string {
  const h = createHash("sha256");
  for (const r of records) {
    if (r.kind === "header") h.update(JSON.stringify(r.header));
    else if (r.kind === "gap") h.update(`gap ${r.lcn} ${r.count};`);
    else {
      h.update(`clusters ${r.lcn} ${r.count} ${r.data.length};`);
      h.update(r.data);
    }
  }
  return h.digest("hex");
}

function splitBy(bytes: Uint8Array, sizes: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = Math.max(1, sizes());
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  return out;
}

async function decodeChunks(chunks: Uint8Array[], batchSize?: number): Promise<NtfscloneRecord[]> {
  return await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(new NtfscloneDecoderStream({ batchSize })),
  );
}

function syncRecords(image: Uint8Array, chunk: number, batchSize?: number): NtfscloneRecord[] {
  const r = new NtfscloneImageReader(memReader(image, chunk), { batchSize, bufferSize: 4096 });
  const out: NtfscloneRecord[] = [{ kind: "header", header: r.header }];
  for (let c = r.next(); c; c = r.next()) {
    out.push(c.kind === "clusters" ? { ...c, data: c.data.slice() } : c);
  }
  return out;
}

Deno.test({
  name:
    "NtfscloneDecoderStream gives the same records for chunk sizes 1, 511, 512, 513 and a random split",
  permissions: "none",
  async fn() {
    const { image } = syntheticImage(7, { clusterSize: 512, nrClusters: 200, extra: 1000 });
    const batch = 512 * 5; // small batches so the batch rule is exercised
    const reference = digest(syncRecords(image, 1 << 20, batch));
    const rnd = prng(42);
    const splits: Array<[string, () => number]> = [
      ["1", () => 1],
      ["511", () => 511],
      ["512", () => 512],
      ["513", () => 513],
      ["random", () => 1 + ((rnd() * 3000) | 0)],
    ];
    for (const [name, size] of splits) {
      const records = await decodeChunks(splitBy(image, size), batch);
      assert.equal(digest(records), reference, `chunk size ${name}`);
    }
    // The sync reader over a pipe that returns short reads agrees too.
    for (const chunk of [1, 511, 513]) {
      assert.equal(digest(syncRecords(image, chunk, batch)), reference);
    }
  },
});

Deno.test({
  name: "NtfscloneDecoderStream piped into NtfscloneEncoderStream rebuilds the image exactly",
  permissions: "none",
  async fn() {
    const { image } = syntheticImage(11, { clusterSize: 1024, nrClusters: 150, extra: 1024 });
    const rnd = prng(5);
    for (const size of [() => 1 + ((rnd() * 700) | 0), () => 4096]) {
      const out = await Array.fromAsync(
        ReadableStream.from(splitBy(image, size))
          .pipeThrough(new NtfscloneDecoderStream({ batchSize: 3000 }))
          .pipeThrough(new NtfscloneEncoderStream(undefined, { chunkSize: 777 })),
      );
      assert.deepEqual(concat(out), image);
    }
  },
});

Deno.test({
  name: "NtfscloneEncoderStream output does not depend on how the clusters are grouped",
  permissions: "none",
  async fn() {
    const { image, header } = syntheticImage(3, { clusterSize: 512, nrClusters: 100 });
    const records = syncRecords(image, 1 << 20);
    // Regroup: one record per cluster.
    const single: NtfscloneEncoderInput[] = [];
    for (const r of records.slice(1)) {
      if (r.kind !== "clusters") {
        single.push(r);
        continue;
      }
      for (let p = 0; p < r.data.length; p += 512) {
        single.push({
          kind: "clusters",
          data: r.data.subarray(p, Math.min(p + 512, r.data.length)),
        });
      }
    }
    const out = await Array.fromAsync(
      ReadableStream.from(single).pipeThrough(new NtfscloneEncoderStream(header)),
    );
    assert.deepEqual(concat(out), image);
  },
});

Deno.test({
  name: "NtfscloneImageReader batches consecutive clusters and reports gaps with positions",
  permissions: "none",
  fn() {
    const header = createNtfscloneHeader({
      clusterSize: 512,
      deviceSize: 10 * 512 + 100,
      nrClusters: 10,
      inuse: 5,
    });
    const sink = new MemorySink({ kind: "stream" });
    const w = new NtfscloneImageWriter(sink, header);
    w.clusters(new Uint8Array(3 * 512).fill(1));
    w.gap(5);
    w.gap(-2);
    w.clusters(new Uint8Array(512).fill(2));
    w.gap(3);
    w.clusters(new Uint8Array(100).fill(3)); // backup-boot cluster, 100-byte payload
    w.finish();
    const r = new NtfscloneImageReader(memReader(sink.bytes(), 7));
    const seen: string[] = [];
    for (let c = r.next(); c; c = r.next()) {
      seen.push(
        c.kind === "gap"
          ? `gap@${c.lcn}:${c.count}`
          : `clusters@${c.lcn}x${c.count}:${c.data.length}`,
      );
    }
    assert.deepEqual(seen, [
      "clusters@0x3:1536",
      "gap@3:5",
      "gap@8:-2",
      "clusters@6x1:512",
      "gap@7:3",
      "clusters@10x1:100",
    ]);
    assert.equal(r.clusterCount, 5);
    assert.equal(r.gapCount, 3);
    assert.equal(r.missingBackupBoot, false);
    assert.equal(r.offset, sink.size);
  },
});

Deno.test({
  name: "NtfscloneImageReader ignores bytes after the backup-boot record",
  permissions: "none",
  fn() {
    const { image } = syntheticImage(9, { nrClusters: 50 });
    const padded = concat([image, new Uint8Array(5000).fill(0xee)]);
    assert.equal(digest(syncRecords(padded, 100)), digest(syncRecords(image, 100)));
  },
});

Deno.test({
  name: "NtfscloneImageReader accepts an image without the backup-boot record (10.0)",
  permissions: "none",
  fn() {
    const header = {
      ...createNtfscloneHeader({ clusterSize: 512, deviceSize: 4096, nrClusters: 7, inuse: 2 }),
      minorVersion: 0,
    };
    const sink = new MemorySink({ kind: "stream" });
    const w = new NtfscloneImageWriter(sink, header);
    w.clusters(new Uint8Array(1024));
    w.gap(5);
    w.finish();
    const r = new NtfscloneImageReader(memReader(sink.bytes(), 3));
    let n = 0;
    while (r.next()) n++;
    assert.equal(n, 2);
    assert.equal(r.missingBackupBoot, true);
    assert.equal(r.next(), null);
  },
});

Deno.test({
  name: "NtfscloneDecoderStream errors the stream on a truncated image",
  permissions: "none",
  async fn() {
    const { image } = syntheticImage(1, { nrClusters: 40 });
    const cut = image.subarray(0, image.length - 100);
    await assert.rejects(
      decodeChunks([cut]),
      (e: unknown) => e instanceof CorruptImageError && e.details.offset === cut.length,
    );
    const badMagic = encodeNtfscloneHeader(
      createNtfscloneHeader({ clusterSize: 512, deviceSize: 1024, nrClusters: 1, inuse: 0 }),
    );
    badMagic[3] = 0x41;
    await assert.rejects(
      decodeChunks([badMagic.subarray(0, 20)]),
      (e: unknown) =>
        e instanceof CorruptImageError && e.details.field === "magic" && e.details.offset === 3,
    );
  },
});

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
