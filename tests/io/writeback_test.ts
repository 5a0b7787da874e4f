import assert from "node:assert/strict";
import { MemorySink, WritebackSink } from "../../lib/io/mod.ts";

function flushing(onFlush: () => Promise<void>) {
  return Object.assign(new MemorySink(), { syncDataAsync: onFlush });
}

Deno.test("WritebackSink: one background flush per step written, bytes passed through exactly", async () => {
  let flushes = 0;
  const inner = flushing(() => (flushes++, Promise.resolve()));
  const out = new WritebackSink(inner, { step: 1000 });
  const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  for (let i = 0; i < 10; i++) out.writeAt(i * 300, data);
  // 3000 bytes: flushes after 1200, 2400 (the count restarts after each flush).
  assert.equal(flushes, 2);
  assert.equal(out.flushes, 2);
  await out.settle();
  assert.equal(inner.size, 3000);
  assert.deepEqual(inner.bytes().subarray(2700, 3000), data);
  assert.equal(out.kind, inner.kind);
  assert.equal(out.size, 3000);
});

Deno.test("WritebackSink: settle waits for running flushes and reports the first error", async () => {
  const resolvers: Array<(e?: Error) => void> = [];
  const inner = flushing(() =>
    new Promise<void>((res, rej) => resolvers.push((e) => (e ? rej(e) : res())))
  );
  let synced = 0;
  const out = new WritebackSink(Object.assign(inner, { sync: () => void synced++ }), { step: 10 });
  out.writeAt(0, new Uint8Array(10));
  out.writeAt(10, new Uint8Array(10));
  assert.equal(resolvers.length, 2);
  let settled = false;
  const s = out.settle().then(() => (settled = true), (e) => e as Error);
  await Promise.resolve();
  assert.equal(settled, false, "settle must wait for the flushes");
  resolvers[0]!(new Error("Input/output error"));
  resolvers[1]!();
  const err = await s;
  assert.ok(err instanceof Error && err.message === "Input/output error");
  assert.throws(() => out.sync(), /Input\/output error/);
  assert.equal(synced, 0, "a failed background flush must fail the final sync");
});

Deno.test("WritebackSink: a sink without syncDataAsync is passed through, optional methods mirrored", async () => {
  const inner = new MemorySink();
  const out = new WritebackSink(inner, { step: 1 });
  out.writeAt(0, new Uint8Array([1, 2, 3]));
  await out.settle();
  assert.equal(out.flushes, 0);
  assert.equal(typeof out.readAt, typeof inner.readAt);
  assert.equal(typeof out.truncate, typeof inner.truncate);
  const stream = { name: "p", kind: "stream" as const, size: 0, writeAt() {}, close() {} };
  const s = new WritebackSink(stream);
  assert.equal(s.readAt, undefined);
  assert.equal(s.truncate, undefined);
  assert.throws(() => new WritebackSink(inner, { step: 0 }), RangeError);
});
