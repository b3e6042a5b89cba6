/**
 * The daemon's two uses of the coverage-file reader (src/coverage/reader.ts): dispatch reads
 * the PC list once, the coverage thread keeps the file open and reads header and seen bits.
 */
import { CoverageFile } from '../coverage/reader.js';
import type { PcList } from './dispatch.js';

export { CoverageFile };

/** Opens, takes the PC list, closes. Throws CoverageFileError (retryable while being created). */
export async function readPcList(file: string): Promise<PcList> {
  const f = CoverageFile.open(file);
  try {
    return { pcsLen: f.pcsLen, pcs: f.pcs };
  } finally {
    f.close();
  }
}

/** Opens a coverage file for the coverage thread. */
export function openLive(file: string): CoverageFile {
  return CoverageFile.open(file);
}
