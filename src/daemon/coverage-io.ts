/**
 * The daemon's two uses of the coverage-file reader (src/coverage/reader.ts): dispatch reads
 * the PC list once, on the main thread and without blocking it; the coverage thread keeps the
 * file open and reads header and seen bits. Both refuse FIFOs, devices and symlinks (the
 * untrusted-file rules) and a pcs_len above the daemon's memory budget, before allocating.
 */
import { CoverageFile, readPcListAsync } from '../coverage/reader.js';
import { pcTableHash } from '../contracts/ids.js';
import type { PcList } from './dispatch.js';

export { CoverageFile };

/** Reads the PC list and its hash. Throws CoverageFileError (retryable while being created). */
export async function readPcList(file: string, maxPcs?: number): Promise<PcList> {
  const { pcsLen, pcs } = await readPcListAsync(file, { maxPcs });
  return { pcsLen, pcs, pcsHash: pcTableHash(pcs) };
}

/** Opens a coverage file for the coverage thread. */
export function openLive(file: string, maxPcs?: number): CoverageFile {
  return CoverageFile.open(file, { maxPcs });
}
