/**
 * The seam between `fsimage e2image` and the ext module: what the command needs of an opened
 * filesystem, and the function that opens one.
 *
 * @module
 */
import type { BlockExtent } from "../_internal/extents.ts";
import type { Source } from "../io/types.ts";
import type { NormalImageVolume } from "../e2image/normal.ts";
import { ExtVolume, scrambleDirBlock, ScrambleState } from "../ext/mod.ts";

/** The blocks e2image copies (see lib/ext's `ExtVolume.e2imageSelection`). */
export interface E2imageSelection {
  /** Selected blocks, sorted extents. */
  blocks: BlockExtent[];
  /** Directory data blocks to scramble under `-s`. */
  scrambleBlocks: BlockExtent[];
  /** e2image's mark count (the `-p` total). */
  markCount: number;
}

/** An opened ext filesystem, as the command uses it. */
export interface E2imageVolume extends NormalImageVolume {
  /** Computes e2image's block selection. */
  e2imageSelection(options: {
    allData?: boolean;
    scramble?: boolean;
    outputIsDevice?: boolean;
    onWarning?: (line: string) => void;
  }): E2imageSelection;
}

/** Scrambles one directory block in place (e2image `-s`). */
export type BlockScrambler = (
  block: Uint8Array,
  blockNumber: number,
  report: (line: string) => void,
) => void;

/** Opens the filesystem on `source`; throws the ext module's errors. */
export function openE2imageVolume(
  source: Source,
  options: { superblock?: number; blockSize?: number; pastEndMessage?: (offset: number) => string },
): E2imageVolume {
  return ExtVolume.open(source, options);
}

/** A scrambler with fresh per-run state. */
export function newScrambler(): BlockScrambler {
  const state = new ScrambleState();
  return (block, blockNumber, report) => scrambleDirBlock(block, blockNumber, state, report);
}
