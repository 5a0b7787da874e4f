import assert from "node:assert/strict";
import { FsimageError } from "../../lib/errors.ts";
import { MemorySink } from "../../lib/io/memory.ts";
import {
  NtfscloneDecoderStream,
  NtfscloneImageReader,
  type NtfscloneRecord,
  restoreNtfsclone,
} from "../../lib/ntfsclone/mod.ts";
import { memReader, prng, syntheticImage } from "./_util.ts";

/** Outcome of a sync decode: the records, or the error's code and offset. */
function syncOutcome(image: Uint8Array): string {
  const out: string[] = [];
  try {
    const r = new NtfscloneImageReader(memReader(image, 61), { bufferSize: 4096, batchSize: 2048 });
    out.push(`header ${JSON.stringify(r.header)}`);
    for (let c = r.next(); c; c = r.next()) out.push(describe(c));
  } catch (e) {
    assert.ok(e instanceof FsimageError, `not a domain error: ${e}`);
    out.push(`error ${e.code} ${(e as { details?: { offset?: number } }).details?.offset}`);
  }
  return out.join("\n");
}

async function streamOutcome(image: Uint8Array, split: number): Promise<string> {
  const out: string[] = [];
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < image.length; at += split) chunks.push(image.slice(at, at + split));
  try {
    const records = ReadableStream.from(chunks).pipeThrough(
      new NtfscloneDecoderStream({ batchSize: 2048 }),
    );
    for await (const c of records) {
      out.push(c.kind === "header" ? `header ${JSON.stringify(c.header)}` : describe(c));
    }
  } catch (e) {
    assert.ok(e instanceof FsimageError, `not a domain error: ${e}`);
    out.push(`error ${e.code} ${(e as { details?: { offset?: number } }).details?.offset}`);
  }
  return out.join("\n");
}

function describe(c: NtfscloneRecord): string {
  if (c.kind === "gap") return `gap ${c.lcn} ${c.count}`;
  if (c.kind === "header") return "header";
  let sum = 0;
  for (let i = 0; i < c.data.length; i++) sum = (sum * 31 + c.data[i]!) >>> 0;
  return `clusters ${c.lcn} ${c.count} ${c.data.length} ${sum}`;
}

Deno.test({
  name:
    "mutated images: only domain errors, the sync reader and the stream agree, no write past the device",
  permissions: "none",
  async fn() {
    const rnd = prng(2024);
    const base = syntheticImage(77, { clusterSize: 256, nrClusters: 60, extra: 300 });
    const t0 = performance.now();
    for (let iter = 0; iter < 1500; iter++) {
      const m = base.image.slice();
      const edits = 1 + ((rnd() * 3) | 0);
      for (let k = 0; k < edits; k++) {
        const r = rnd();
        const at = r < 0.3 ? (rnd() * 56) | 0 : (rnd() * m.length) | 0;
        m[at] = rnd() < 0.5 ? (rnd() * 256) | 0 : [0, 1, 0xff, 0x80][(rnd() * 4) | 0]!;
      }
      const image = rnd() < 0.3 ? m.subarray(0, (rnd() * m.length) | 0) : m;
      const sync = syncOutcome(image);
      const split = 1 + ((rnd() * 700) | 0);
      assert.equal(await streamOutcome(image, split), sync, `iteration ${iter}`);
      // A device exactly as large as the original image needs: a mutated header may ask for
      // more (refused up front) but no write may pass the end.
      const cap = base.device.length;
      const dev = new MemorySink({ kind: "device", capacity: cap });
      try {
        restoreNtfsclone(memReader(image, 97), dev, { bufferSize: 4096, batchSize: 2048 });
      } catch (e) {
        assert.ok(e instanceof FsimageError, `not a domain error: ${e}`);
      }
      for (const [off, len] of dev.writes) assert.ok(off >= 0 && off + len <= cap);
    }
    assert.ok(performance.now() - t0 < 30_000);
  },
});
