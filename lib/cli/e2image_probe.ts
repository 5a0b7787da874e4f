/**
 * The plausibility line e2image prints (through libblkid) when a source has no ext magic:
 * `<device> contains a <type> file system[ labelled '<label>']`. Only a few common signatures
 * are recognised; anything else prints nothing, as libblkid does for unknown contents.
 *
 * @module
 */
import type { Source } from "../io/types.ts";

const latin1 = new TextDecoder("latin1");

function text(b: Uint8Array, off: number, len: number): string {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return latin1.decode(nul < 0 ? f : f.subarray(0, nul)).trimEnd();
}

function read(src: Source, offset: number, length: number): Uint8Array | undefined {
  if (offset + length > src.size) return undefined;
  const b = new Uint8Array(length);
  try {
    return src.readAt(offset, b) === length ? b : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Names the filesystem (and label) found on `source`, or `undefined`.
 *
 * @example
 * ```ts
 * import { MemorySource } from "../io/memory.ts";
 * import { probeOtherFilesystem } from "./e2image_probe.ts";
 * const b = new Uint8Array(8192);
 * b.set(new TextEncoder().encode("SWAPSPACE2"), 4086);
 * console.assert(probeOtherFilesystem(new MemorySource(b))?.type === "swap");
 * ```
 */
export function probeOtherFilesystem(
  source: Source,
): { type: string; label?: string } | undefined {
  // Linux swap: the signature ends a page; the label follows the header at 1024 + 28.
  for (const page of [4096, 8192, 16384, 32768, 65536]) {
    const sig = read(source, page - 10, 10);
    if (!sig) break;
    const s = latin1.decode(sig);
    if (s === "SWAPSPACE2" || s === "SWAP-SPACE") {
      const hdr = s === "SWAPSPACE2" ? read(source, 1024, 44) : undefined;
      const label = hdr ? text(hdr, 28, 16) : "";
      return label ? { type: "swap", label } : { type: "swap" };
    }
  }
  const head = read(source, 0, 512);
  if (head) {
    if (latin1.decode(head.subarray(3, 11)) === "NTFS    ") return { type: "ntfs" };
    if (latin1.decode(head.subarray(0, 4)) === "XFSB") {
      const label = text(head, 108, 12);
      return label ? { type: "xfs", label } : { type: "xfs" };
    }
  }
  const btrfs = read(source, 65536, 0x22b);
  if (btrfs && latin1.decode(btrfs.subarray(0x40, 0x48)) === "_BHRfS_M") {
    const label = text(btrfs, 0x12b, 256);
    return label ? { type: "btrfs", label } : { type: "btrfs" };
  }
  return undefined;
}
