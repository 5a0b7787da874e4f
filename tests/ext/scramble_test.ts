import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { scrambleDirBlock, ScrambleState } from "../../lib/ext/mod.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

/** Builds a directory block from [inode, name] entries; the last entry takes the rest. */
function dirBlock(bs: number, names: string[]): Uint8Array {
  const b = new Uint8Array(bs);
  const v = new DataView(b.buffer);
  let p = 0;
  names.forEach((n, i) => {
    const rec = i === names.length - 1 ? bs - p : (8 + n.length + 3) & ~3;
    v.setUint32(p, 100 + i, true);
    v.setUint16(p + 4, rec === 65536 ? 0 : rec, true);
    b[p + 6] = n.length;
    b[p + 7] = 1;
    b.set(enc.encode(n), p + 8);
    p += rec;
  });
  return b;
}

function names(b: Uint8Array): string[] {
  const out: string[] = [];
  let p = 0;
  while (p < b.length - 8) {
    let rec = b[p + 4]! | (b[p + 5]! << 8);
    if (rec === 0 || rec === 65535) rec = b.length;
    out.push(dec.decode(b.subarray(p + 8, p + 8 + b[p + 6]!)));
    p += rec;
  }
  return out;
}

Deno.test({
  name: "scrambleDirBlock() renames like e2image -s, with counters per name length",
  permissions: "none",
  fn() {
    const st = new ScrambleState();
    const b = dirBlock(1024, [".", "..", "big", "sub", "xyz", "ab", "cd", "e"]);
    scrambleDirBlock(b, 5, st, () => {});
    assertEquals(names(b), [".", "..", "AAA", "BAA", "CAA", "AA", "BA", "A"]);
    // The counters carry over to the next block; id 26 is "ABA".
    const many = Array.from({ length: 24 }, (_, i) => `n${String(i).padStart(2, "0")}`);
    const b2 = dirBlock(1024, many);
    scrambleDirBlock(b2, 6, st, () => {});
    assertEquals(names(b2).slice(22), ["ZAA", "ABA"]);
  },
});

Deno.test({
  name: "scrambleDirBlock() zeroes slack, including a checksum tail and htree root data",
  permissions: "none",
  fn() {
    const b = dirBlock(1024, [".", "..", "file"]);
    b[10] = 0x77; // junk in "."'s slack
    b[1020] = 0xde; // junk at the end of the last record
    scrambleDirBlock(b, 9, new ScrambleState(), () => {});
    assertEquals(b[10], 0);
    assertEquals(b[1020], 0);
  },
});

Deno.test({
  name: "scrambleDirBlock() reports and repairs a bad rec_len and a bad name_len",
  permissions: "none",
  fn() {
    const lines: string[] = [];
    const b = dirBlock(1024, [".", "..", "file"]);
    new DataView(b.buffer).setUint16(12 + 4, 13, true); // ".." rec_len not a multiple of 4
    scrambleDirBlock(b, 42, new ScrambleState(), (l) => lines.push(l));
    assertEquals(lines, ["Corrupt directory block 42: bad rec_len (65548)"]);
    assertEquals(new DataView(b.buffer).getUint16(12 + 4, true), 1012);

    const lines2: string[] = [];
    const c = dirBlock(1024, [".", "..", "file"]);
    c[6] = 9; // "." claims 9 name bytes in a 12-byte record
    scrambleDirBlock(c, 43, new ScrambleState(), (l) => lines2.push(l));
    assertEquals(lines2, ["Corrupt directory block 43: bad name_len (9)"]);
    assertEquals(c[6], 4);
    assertEquals(names(c).slice(2), ["AAAA"]);
  },
});

Deno.test({
  name: "scrambleDirBlock() understands 64 KiB blocks (rec_len 0 / 65535)",
  permissions: "none",
  fn() {
    const b = new Uint8Array(65536);
    const v = new DataView(b.buffer);
    v.setUint32(0, 11, true);
    v.setUint16(4, 65535, true);
    b[6] = 3;
    b.set(enc.encode("abc"), 8);
    b[60000] = 1;
    const lines: string[] = [];
    scrambleDirBlock(b, 1, new ScrambleState(), (l) => lines.push(l));
    assertEquals(lines, []);
    assertEquals(dec.decode(b.subarray(8, 11)), "AAA");
    assertEquals(b[60000], 0);
  },
});
