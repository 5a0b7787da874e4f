/**
 * Random access to the device an ntfsclone image describes, without restoring it:
 * {@linkcode NtfscloneImageSource} indexes the command stream once (memory follows the number of
 * stored runs, not the device size) and then serves `readAt` from the image, with zeros for
 * clusters the image does not store. Any walker that reads a {@linkcode Source} can then run on
 * an ntfsclone image directly.
 *
 * @module
 */
import { CorruptImageError, ReadError } from "../errors.ts";
import { hex } from "../_internal/bytes.ts";
import type { ReaderSync, Source } from "../io/types.ts";
import { NtfscloneImageReader } from "./decoder.ts";
import { type NtfscloneHeader, restoredSize } from "./header.ts";

/** One indexed run: `count` consecutive clusters whose first payload is at `imageOffset`. */
interface Run {
  lcn: number;
  count: number;
  /** Image offset of the payload of cluster `lcn` (records are `1 + clusterSize` bytes apart). */
  imageOffset: number;
}

function sourceReader(source: Source, start: number): ReaderSync {
  let pos = start;
  return {
    readSync(p: Uint8Array): number | null {
      const n = source.readAt(pos, p);
      pos += n;
      return n > 0 ? n : null;
    },
  };
}

/**
 * Keeps, for each cluster, the run that stores it last (metadata images store some clusters
 * twice); `stride` is the distance between two records (1 + cluster size).
 */
function lastWins(runs: Run[], stride: number): Run[] {
  let sorted = true;
  for (let i = 1; i < runs.length && sorted; i++) {
    const a = runs[i - 1]!, b = runs[i]!;
    if (b.lcn < a.lcn + a.count) sorted = false;
  }
  if (sorted) return runs;
  // Walk backwards: a run keeps only the parts no later run covers.
  const covered: Array<{ lcn: number; end: number }> = []; // sorted, disjoint
  const out: Run[] = [];
  for (let i = runs.length - 1; i >= 0; i--) {
    const r = runs[i]!;
    const end = r.lcn + r.count;
    let lo = 0, hi = covered.length; // first covered interval ending after r.lcn
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (covered[mid]!.end <= r.lcn) lo = mid + 1;
      else hi = mid;
    }
    let lcn = r.lcn;
    for (let j = lo; lcn < end; j++) {
      const c = covered[j];
      const stop = c ? Math.min(end, c.lcn) : end;
      if (stop > lcn) {
        out.push({ lcn, count: stop - lcn, imageOffset: r.imageOffset + (lcn - r.lcn) * stride });
      }
      if (!c) break;
      lcn = Math.max(lcn, c.end);
    }
    // Merge [r.lcn, end) into the covered list.
    let a = lo;
    while (a > 0 && covered[a - 1]!.end >= r.lcn) a--;
    let b = a, mlcn = r.lcn, mend = end;
    while (b < covered.length && covered[b]!.lcn <= mend) {
      mlcn = Math.min(mlcn, covered[b]!.lcn);
      mend = Math.max(mend, covered[b]!.end);
      b++;
    }
    covered.splice(a, b - a, { lcn: mlcn, end: mend });
  }
  return out.sort((x, y) => x.lcn - y.lcn);
}

/**
 * The device an ntfsclone image describes, as a read-only {@linkcode Source}. Its size is
 * {@linkcode restoredSize} (what a restore writes); clusters the image does not store read as
 * zeros; where a metadata image stores a cluster twice, the later record wins (as in a restore).
 *
 * @example
 * ```ts
 * import { MemorySink, MemorySource } from "../io/mod.ts";
 * import { createNtfscloneHeader, NtfscloneImageSource, NtfscloneImageWriter } from "./mod.ts";
 * const img = new MemorySink({ kind: "stream" });
 * const w = new NtfscloneImageWriter(img, createNtfscloneHeader({ clusterSize: 512, deviceSize: 2048, nrClusters: 3, inuse: 1 }));
 * w.clusters(new Uint8Array(512).fill(1)); w.gap(2); w.clusters(new Uint8Array(512).fill(4)); w.finish();
 * const dev = NtfscloneImageSource.open(new MemorySource(img.bytes()));
 * const buf = new Uint8Array(4);
 * dev.readAt(1534, buf);
 * console.assert(dev.size === 2048 && buf.join() === "0,0,4,4");
 * ```
 */
export class NtfscloneImageSource implements Source {
  readonly #image: Source;
  readonly #runs: Run[];
  readonly #cs: number;
  #scratch: Uint8Array = new Uint8Array(0);
  /** The image header. */
  readonly header: NtfscloneHeader;
  /** The image's name. */
  readonly name: string;
  /** Bytes of the described device: {@linkcode restoredSize} of the header. */
  readonly size: number;

  private constructor(image: Source, header: NtfscloneHeader, runs: Run[]) {
    this.#image = image;
    this.header = header;
    this.#runs = runs;
    this.#cs = header.clusterSize;
    this.name = image.name;
    this.size = restoredSize(header);
  }

  /**
   * Reads the whole command stream of `image` once and indexes the stored runs. Throws
   * {@linkcode CorruptImageError} for a corrupt or truncated image.
   */
  static open(image: Source): NtfscloneImageSource {
    const reader = new NtfscloneImageReader(sourceReader(image, 0), { name: image.name });
    const cs = reader.header.clusterSize;
    const runs: Run[] = [];
    for (let c = reader.next(); c; c = reader.next()) {
      if (c.kind !== "clusters") continue;
      // The batch's records end at reader.offset: count command bytes + the payloads.
      const first = reader.offset - (c.count + c.data.length) + 1;
      const last = runs[runs.length - 1];
      if (
        last && last.lcn + last.count === c.lcn &&
        last.imageOffset + last.count * (cs + 1) === first
      ) last.count += c.count;
      else runs.push({ lcn: c.lcn, count: c.count, imageOffset: first });
    }
    const resolved = lastWins(runs, cs + 1);
    return new NtfscloneImageSource(image, reader.header, resolved);
  }

  /** Number of indexed runs (memory follows this). */
  get runCount(): number {
    return this.#runs.length;
  }

  #find(lcn: number): number {
    // Index of the last run starting at or before lcn, or -1.
    let lo = 0, hi = this.#runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#runs[mid]!.lcn <= lcn) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** Reads device bytes at `offset`; short only at {@linkcode NtfscloneImageSource.size}. */
  readAt(offset: number, buf: Uint8Array): number {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Invalid offset ${offset}`);
    }
    const cs = this.#cs;
    const len = Math.max(0, Math.min(buf.length, this.size - offset));
    let done = 0;
    while (done < len) {
      const pos = offset + done;
      const lcn = Math.floor(pos / cs);
      const i = this.#find(lcn);
      const run = i >= 0 ? this.#runs[i]! : undefined;
      if (!run || lcn >= run.lcn + run.count) {
        // A gap: zeros up to the next run.
        const next = this.#runs[i + 1];
        const stop = Math.min(len, (next ? next.lcn * cs : this.size) - offset);
        buf.fill(0, done, stop);
        done = stop;
        continue;
      }
      // Stored clusters lcn .. run end: read their records in one go and de-interleave.
      const inCluster = pos - lcn * cs;
      const want = Math.min(len - done, (run.lcn + run.count) * cs - pos, 4 << 20);
      const k = Math.ceil((inCluster + want) / cs); // clusters touched
      const start = run.imageOffset + (lcn - run.lcn) * (cs + 1);
      const span = Math.min(k * (cs + 1) - 1, this.#image.size - start);
      if (this.#scratch.length < span) this.#scratch = new Uint8Array(Math.max(span, 1 << 20));
      const s = this.#scratch.subarray(0, span);
      const n = this.#image.readAt(start, s);
      if (n < span) {
        throw new ReadError(this.#image.name, start + n, span - n, "the image ended early");
      }
      let w = 0;
      for (let j = 0; j < k && w < want; j++) {
        const from = j * (cs + 1) + (j === 0 ? inCluster : 0);
        const take = Math.min(want - w, cs - (j === 0 ? inCluster : 0), span - from);
        if (take <= 0) {
          throw new CorruptImageError(
            `Cannot read ntfsclone image ${this.name}: a payload ends early (byte ${
              hex(start + from)
            })`,
            {
              format: "ntfsclone",
              offset: start + from,
            },
          );
        }
        buf.set(s.subarray(from, from + take), done + w);
        w += take;
      }
      done += w;
    }
    return len;
  }

  /** Closes the image source. */
  close(): void {
    this.#image.close();
  }
}
