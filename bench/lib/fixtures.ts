/**
 * Real executables and coverage files for the benchmarks and the soak: the example target built
 * with the agent (real DWARF), its PC list as its own agent writes it, copies of the executable
 * under other paths (so many targets can be live at once: the daemon retires older targets of the
 * same executable path), and synthetic-but-valid coverage files written with src/coverage/writer.
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { buildExampleTarget, findCoverageFile, runFuzzer } from '../../src/build/targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { writeCoverageFile } from '../../src/coverage/writer.js';
import { writeCoverageMeta } from '../../src/coverage/meta.js';
import { tempDir } from './daemon-process.js';

export interface RealTarget {
  exe: string;
  /** The executable's PCs (link-time addresses), in its agent's order. */
  pcs: BigUint64Array;
  buildId: string | null;
}

/** Builds examples/tinyimg with the agent (cached) and reads its PC list from one short libFuzzer run. */
export async function exampleTarget(): Promise<RealTarget> {
  const exe = await buildExampleTarget();
  const dir = tempDir('covd-pcs-');
  try {
    const run = runFuzzer(exe, { covdDir: dir, runs: 1, env: { COVD_AGENT_QUIET: '1', COVD_SOCKET: join(dir, 'none.sock') } });
    const file = await findCoverageFile(dir);
    await run.done;
    const c = readCoverageFile(file);
    const { readCoverageMeta } = await import('../../src/coverage/meta.js');
    const meta = readCoverageMeta(file);
    return { exe, pcs: c.pcs.slice(), buildId: meta?.buildId ?? null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Copies an executable to <dir>/<name>/<basename> and returns the new path. */
export function copyExe(exe: string, dir: string, name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const out = join(d, exe.split('/').pop()!);
  copyFileSync(exe, out);
  return out;
}

export function randomId(): string {
  return randomBytes(8).toString('hex');
}

export interface SynthOptions {
  exe: string;
  pcs: ArrayLike<bigint>;
  buildId?: string | null;
  seen?: Iterable<number>;
  nRuns?: bigint;
  id?: string;
}

/** Writes <covdDir>/v/<id> and its metadata; returns the coverage file path and id. */
export function writeSynthetic(covdDir: string, o: SynthOptions): { file: string; id: string } {
  const id = o.id ?? randomId();
  const v = join(covdDir, 'v');
  mkdirSync(v, { recursive: true });
  const file = join(v, id);
  writeCoverageFile(file, { pcs: o.pcs, seen: o.seen ?? [], nRuns: o.nRuns ?? 1n, uniqueRuns: 1n });
  writeCoverageMeta(file, { exe: o.exe, buildId: o.buildId ?? null, pid: process.pid, startTime: Date.now(), argv: [o.exe] });
  return { file, id };
}

/** n PCs made by cycling a real PC list (every one resolves to a real line). */
export function cyclePcs(pcs: BigUint64Array, n: number): BigUint64Array {
  const out = new BigUint64Array(n);
  for (let i = 0; i < n; i++) out[i] = pcs[i % pcs.length]!;
  return out;
}
