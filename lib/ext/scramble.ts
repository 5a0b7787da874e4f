/**
 * e2image `-s`: scramble the names in directory blocks, exactly as e2image 1.47's
 * `scramble_dir_block` does (slack zeroed, names replaced by base-26 counters per name
 * length, corrupt entries reported and repaired the same way).
 *
 * @module
 */

/**
 * The per-name-length counters of one e2image run; share one instance across every block of
 * the run, visited in ascending block order.
 *
 * @example
 * ```ts
 * import { ScrambleState } from "./scramble.ts";
 * const s = new ScrambleState();
 * console.assert(s.next(3) === 0 && s.next(3) === 1 && s.next(2) === 0);
 * ```
 */
export class ScrambleState {
  #ids = new Int32Array(256);

  /** Returns the next id for names of `nameLen` bytes and advances the counter. */
  next(nameLen: number): number {
    const id = this.#ids[nameLen & 0xff]!;
    this.#ids[nameLen & 0xff] = (id + 1) | 0;
    return id;
  }
}

/**
 * Scrambles one directory block in place. `blockNumber` only appears in the messages passed
 * to `report` (e2image prints them on stdout): "Corrupt directory block N: bad rec_len (R)"
 * and "Corrupt directory block N: bad name_len (L)", without a newline.
 *
 * @example
 * ```ts
 * import { ScrambleState, scrambleDirBlock } from "./scramble.ts";
 * const b = new Uint8Array(1024);
 * b[0] = 2; b[4] = 12; b[6] = 3; b.set(new TextEncoder().encode("big"), 8); // "big", rec_len 12
 * b[12 + 4] = 0xf4; b[12 + 5] = 3; b[12 + 6] = 1; b[12 + 8] = 0x78; // "x", rec_len 1012
 * scrambleDirBlock(b, 7, new ScrambleState(), () => {});
 * console.assert(new TextDecoder().decode(b.subarray(8, 11)) === "AAA" && b[20] === 0x41);
 * ```
 */
export function scrambleDirBlock(
  block: Uint8Array,
  blockNumber: number,
  state: ScrambleState,
  report: (line: string) => void,
): void {
  const bs = block.length;
  const end = bs;
  let p = 0;
  while (p < end - 8) {
    let recLen = block[p + 4]! | (block[p + 5]! << 8);
    if (recLen === 65535 || recLen === 0) recLen = bs;
    else recLen = (recLen & 65532) | ((recLen & 3) << 16);
    if (recLen < 8 || recLen % 4 || p + recLen > end) {
      report(`Corrupt directory block ${blockNumber}: bad rec_len (${recLen})`);
      const len = end - p;
      // ext2fs_set_rec_len
      if (!(len > bs || bs > (1 << 18) || (len & 3))) {
        let v: number;
        if (len < 65536) v = len;
        else if (len === bs) v = bs === 65536 ? 65535 : 0;
        else v = (len & 65532) | ((len >> 16) & 3);
        block[p + 4] = v & 0xff;
        block[p + 5] = (v >> 8) & 0xff;
      }
      p += len;
      continue;
    }
    const nameLen = block[p + 6]!;
    if (nameLen + 8 > recLen) {
      report(`Corrupt directory block ${blockNumber}: bad name_len (${nameLen})`);
      block[p + 6] = (recLen - 8) & 0xff;
      p += recLen;
      continue;
    }
    const cp = p + 8;
    if (recLen - nameLen - 8 > 0) block.fill(0, cp + nameLen, p + recLen);
    if (nameLen === 1 && block[cp] === 0x2e) {
      p += recLen;
      continue;
    }
    if (nameLen === 2 && block[cp] === 0x2e && block[cp + 1] === 0x2e) {
      p += recLen;
      continue;
    }
    block.fill(0x41, cp, cp + nameLen);
    let id = state.next(nameLen);
    for (let i = 0; i < nameLen && id > 0; i++) {
      block[cp + i] = (block[cp + i]! + (id % 26)) & 0xff;
      id = Math.floor(id / 26);
    }
    p += recLen;
  }
}
