/**
 * The metadata file beside a coverage file (`v/<id>.meta.json`): which executable writes it.
 * The agent writes it atomically (temp file + rename), so a reader sees a whole file or none.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readBounded, readBoundedSync, UntrustedFileError } from '../util/untrusted.js';
import { CoverageMetaError } from '../contracts/errors.js';
import type { CoverageMeta } from './types.js';
import { COVERAGE_ID } from '../contracts/ids.js';

/** Largest metadata file read: a real one is a few hundred bytes (argv included). */
export const MAX_META_BYTES = 64 << 10;

export { CoverageMetaError } from '../contracts/errors.js';

const ID = COVERAGE_ID;

/** The coverage id (16 lower-case hex digits) of a coverage file path, or null if the name is not one. */
export function coverageIdOf(file: string): string | null {
  const name = basename(file);
  return ID.test(name) ? name : null;
}

/** <dir>/v/<id> */
export function coverageFilePath(covdDir: string, id: string): string {
  return join(covdDir, 'v', id);
}

/** The metadata path for a coverage file: the same path + '.meta.json'. */
export function metaPathFor(coverageFile: string): string {
  return `${coverageFile}.meta.json`;
}

/** Validates parsed JSON as CoverageMeta; throws CoverageMetaError naming the bad field. */
export function parseCoverageMeta(path: string, json: unknown): CoverageMeta {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CoverageMetaError(path, 'not a JSON object');
  const o = json as Record<string, unknown>;
  if (typeof o.exe !== 'string' || !o.exe.startsWith('/')) throw new CoverageMetaError(path, '"exe" must be an absolute path');
  if (o.buildId !== null && (typeof o.buildId !== 'string' || !/^[0-9a-f]{2,128}$/.test(o.buildId))) {
    throw new CoverageMetaError(path, '"buildId" must be lower-case hex or null');
  }
  if (!Number.isSafeInteger(o.pid) || (o.pid as number) <= 0) throw new CoverageMetaError(path, '"pid" must be a positive integer');
  if (!Number.isSafeInteger(o.startTime) || (o.startTime as number) < 0) throw new CoverageMetaError(path, '"startTime" must be milliseconds since the epoch');
  if (!Array.isArray(o.argv) || !o.argv.every((a) => typeof a === 'string')) throw new CoverageMetaError(path, '"argv" must be an array of strings');
  const meta: CoverageMeta = { exe: o.exe, buildId: o.buildId as string | null, pid: o.pid as number, startTime: o.startTime as number, argv: o.argv as string[] };
  // AFL++ builds (docs/coverage-file.md): optional, and ignored when malformed rather than failing the file.
  if (o.engine === 'afl') meta.engine = 'afl';
  if (typeof o.aflOutDir === 'string' && o.aflOutDir.startsWith('/') && o.aflOutDir.length < 4096) meta.aflOutDir = o.aflOutDir;
  return meta;
}

/**
 * Reads the metadata of a coverage file. Returns null when there is none (yet); throws
 * CoverageMetaError when it is not valid JSON or lacks a field.
 */
export function readCoverageMeta(coverageFile: string): CoverageMeta | null {
  const path = metaPathFor(coverageFile);
  let text: string;
  try {
    text = readBoundedSync(path, MAX_META_BYTES, META_RULES).toString('utf8');
  } catch (err) {
    return metaReadError(path, err);
  }
  return parseMetaText(path, text);
}

/** readCoverageMeta without blocking the calling thread (the daemon's main thread uses this). */
export async function readCoverageMetaAsync(coverageFile: string): Promise<CoverageMeta | null> {
  const path = metaPathFor(coverageFile);
  let text: string;
  try {
    text = (await readBounded(path, MAX_META_BYTES, META_RULES)).toString('utf8');
  } catch (err) {
    return metaReadError(path, err);
  }
  return parseMetaText(path, text);
}

/** The metadata beside a coverage file, or undefined when absent or not (yet) valid. Never blocks. */
export async function readMeta(coverageFile: string): Promise<CoverageMeta | undefined> {
  try {
    return (await readCoverageMetaAsync(coverageFile)) ?? undefined;
  } catch {
    return undefined;
  }
}

// The agent writes real files into v/: a symlink there (to /dev/zero, say) is refused.
const META_RULES = { noFollow: true } as const;

function metaReadError(path: string, err: unknown): null {
  if (err instanceof UntrustedFileError && err.kind === 'ENOENT') return null;
  throw new CoverageMetaError(path, err instanceof UntrustedFileError ? err.message.slice(path.length + 2) : (err as Error).message);
}

function parseMetaText(path: string, text: string): CoverageMeta {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CoverageMetaError(path, `invalid JSON: ${(err as Error).message}`);
  }
  return parseCoverageMeta(path, json);
}

/** Writes metadata atomically (temp + rename), as the agent does. For tests and other writers. */
export function writeCoverageMeta(coverageFile: string, meta: CoverageMeta): string {
  const path = metaPathFor(coverageFile);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(meta) + '\n');
  renameSync(tmp, path);
  return path;
}
