import assert from "node:assert/strict";
import {
  FaultySource,
  MemorySink,
  MemorySource,
  readBytes,
  readFully,
  WindowSink,
  WindowSource,
  writeAllSync,
} from "../../lib/io/mod.ts";
import { ReadError } from "../../lib/errors.ts";

const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

Deno.test("MemorySource reads short only at its end", () => {
  const s = new MemorySource(pattern(100));
  const b = new Uint8Array(30);
  assert.equal(s.readAt(90, b), 10);
  assert.equal(b[0], (90 * 7 + 3) & 0xff);
  assert.equal(s.readAt(100, b), 0);
  assert.throws(() => s.readAt(-1, b), RangeError);
});

Deno.test("readFully() throws a ReadError naming the source and offset when data ends early", () => {
  const s = new MemorySource(new Uint8Array(10), "disk.img");
  assert.throws(
    () => readFully(s, 8, new Uint8Array(4)),
    (e) =>
      e instanceof ReadError && e.offset === 10 && /disk\.img/.test(e.message) &&
      /0xa/.test(e.message),
  );
  assert.deepEqual(readBytes(s, 0, 2), new Uint8Array(2));
});

Deno.test("WindowSource views a sub-range and never reads past it", () => {
  const inner = new MemorySource(pattern(1000));
  const w = new WindowSource(inner, 100, 50);
  assert.equal(w.size, 50);
  const b = new Uint8Array(80);
  assert.equal(w.readAt(0, b), 50);
  assert.deepEqual(b.subarray(0, 50), pattern(1000).subarray(100, 150));
  assert.equal(w.readAt(50, b), 0);
  assert.equal(new WindowSource(inner, 2000).size, 0);
});

Deno.test("WindowSink writes at its offset and refuses writes past its limit before writing", () => {
  const inner = new MemorySink({ kind: "device", capacity: 1024, fill: 0xaa });
  const w = new WindowSink(inner, 512);
  assert.equal(w.size, 512);
  w.writeAt(0, new Uint8Array([1, 2]));
  assert.deepEqual(inner.bytes().subarray(511, 515), new Uint8Array([0xaa, 1, 2, 0xaa]));
  assert.throws(() => w.writeAt(511, new Uint8Array(2)), /passes the end/);
  assert.equal(inner.writes.length, 1);
  assert.throws(() => new WindowSink(new MemorySink({ kind: "stream" }), 1), TypeError);
});

Deno.test("MemorySink as a device refuses writes past its capacity; as a stream only appends", () => {
  const d = new MemorySink({ kind: "device", capacity: 10 });
  assert.throws(() => d.writeAt(8, new Uint8Array(3)), RangeError);
  const s = new MemorySink({ kind: "stream" });
  s.writeAt(0, new Uint8Array(2));
  assert.throws(() => s.writeAt(5, new Uint8Array(1)), RangeError);
});

Deno.test("FaultySource fails exactly the reads that touch a bad range", () => {
  const f = new FaultySource(new MemorySource(pattern(4096)), [{ offset: 1024, length: 512 }]);
  assert.equal(f.readAt(0, new Uint8Array(1024)), 1024);
  assert.equal(f.readAt(1536, new Uint8Array(1024)), 1024);
  assert.throws(
    () => f.readAt(1000, new Uint8Array(100)),
    (e) => e instanceof ReadError && e.offset === 1024,
  );
  assert.equal(f.failures, 1);
});

Deno.test("writeAllSync() loops over short writes", () => {
  const got: number[] = [];
  writeAllSync({
    writeSync(p) {
      const n = Math.min(3, p.length);
      got.push(...p.subarray(0, n));
      return n;
    },
  }, pattern(10));
  assert.deepEqual(new Uint8Array(got), pattern(10));
});
