/**
 * The agent's seen bits agree with libFuzzer's own account of what it covered, on a real run:
 * the per-function edge counts of -print_coverage=1, the final "cov:" figure, and every NEW_PC of
 * -print_pcs=1 (mapped back to link-time addresses). One known, documented difference: libFuzzer
 * runs an empty input once before the corpus without recording its coverage; the agent records
 * it. PCs only that input reached may therefore be seen by the agent alone.
 */
import { expect } from 'chai';
import { cpSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildExampleTarget, buildSqliteTarget, findCoverageFile, runFuzzer, seedCorpusFor } from '../helpers/fuzz-targets.js';
import { readCoverageFile } from '../../src/coverage/reader.js';
import { isSeen } from '../../src/contracts/seen.js';
import { inferBias, parseLibFuzzerOutput } from './libfuzzer-output.js';
import { scratchDirs } from '../helpers/scratch.js';

/** Seen PC indices of the coverage file in covdDir. */
async function seenIndices(covdDir: string): Promise<{ seen: Set<number>; pcs: BigUint64Array; nRuns: bigint }> {
  const file = await findCoverageFile(covdDir);
  const snap = readCoverageFile(file);
  const seen = new Set<number>();
  for (let i = 0; i < snap.pcs.length; i++) if (isSeen(snap.seen, i)) seen.add(i);
  return { seen, pcs: snap.pcs, nRuns: snap.header.nRuns };
}

describe('agent agrees with libFuzzer on a real run', function () {
  this.timeout(600_000);
  const tmp = scratchDirs();

  /** Runs exe under libFuzzer and checks the agent's account against libFuzzer's; returns the seen set. */
  async function checkAgreement(exe: string, runs: number, minCovered: number, env: NodeJS.ProcessEnv = {}): Promise<Set<number>> {
    const covdDir = tmp();
    const { done } = runFuzzer(exe, { covdDir, runs, env, extraArgs: ['-seed=7', '-print_coverage=1', '-print_pcs=1'] });
    const { code, stderr } = await done;
    expect(code, stderr.slice(-2000)).to.equal(0);
    const lf = parseLibFuzzerOutput(stderr);
    const { seen, pcs, nRuns } = await seenIndices(covdDir);

    // Every execution counted, the initial empty input included (as libFuzzer's own count).
    expect(lf.runs).to.equal(runs);
    expect(nRuns).to.equal(BigInt(runs));

    // PCs the empty input alone reaches (recorded by the agent, not by libFuzzer).
    const emptyDir = tmp();
    const emptyFile = join(emptyDir, 'empty');
    writeFileSync(emptyFile, '');
    const covEmpty = tmp();
    const r0 = runFuzzer(exe, { covdDir: covEmpty, corpus: null, env, extraArgs: [emptyFile] });
    expect((await r0.done).code).to.equal(0);
    const emptySeen = (await seenIndices(covEmpty)).seen;
    expect(emptySeen.size).to.be.greaterThan(0);

    // -print_coverage=1: functions in pc-table order, "edges: covered/total".
    expect(lf.funcs.length).to.be.greaterThan(5);
    const totalEdges = lf.funcs.reduce((s, f) => s + f.total, 0);
    expect(totalEdges, 'every PC belongs to a printed function').to.equal(pcs.length);
    let start = 0;
    let libfuzzerCovered = 0;
    for (const f of lf.funcs) {
      let ours = 0;
      let extra = 0;
      for (let i = start; i < start + f.total; i++) {
        if (seen.has(i)) ours++;
      }
      // libFuzzer's count may only lack PCs that the empty input reached.
      for (let i = start; i < start + f.total; i++) if (seen.has(i) && emptySeen.has(i)) extra++;
      expect(ours, `${f.name} ${f.location}`).to.be.at.least(f.edges);
      expect(ours - f.edges, `${f.name}: agent-only PCs must come from the empty input`).to.be.at.most(extra);
      libfuzzerCovered += f.edges;
      start += f.total;
    }
    expect(lf.finalCov).to.equal(libfuzzerCovered);
    expect(seen.size).to.be.at.least(libfuzzerCovered);
    const agentOnly = seen.size - libfuzzerCovered;
    expect(agentOnly).to.be.at.most(emptySeen.size);
    // The run must have gone somewhere: well past the seeds.
    expect(libfuzzerCovered).to.be.greaterThan(minCovered);

    // -print_pcs=1: each NEW_PC, mapped back with one load bias, is a seen PC of the file.
    expect(lf.newPcs.length).to.be.greaterThan(3);
    const bias = inferBias(lf.newPcs, pcs);
    expect(bias, 'one page-aligned load bias maps every NEW_PC into the PC list').to.not.equal(null);
    const index = new Map<bigint, number>();
    pcs.forEach((pc, i) => index.set(pc, i));
    for (const p of lf.newPcs) {
      const i = index.get(p - bias!.adjust - bias!.bias)!;
      expect(seen.has(i), `NEW_PC ${p.toString(16)} is seen`).to.equal(true);
    }
    return seen;
  }

  it('seen bits match -print_coverage=1, the final cov: and every NEW_PC of -print_pcs=1', async () => {
    await checkAgreement(await buildExampleTarget(), 40_000, 60);
  });

  it('every counter scan (avx2, sse2, portable) records exactly the same bits', async () => {
    const exe = await buildExampleTarget();
    // A corpus from a short fuzz run, then each scan replays exactly those inputs (-runs=0).
    const corpus = tmp();
    cpSync(seedCorpusFor(exe)!, corpus, { recursive: true });
    expect((await runFuzzer(exe, { covdDir: tmp(), corpus, runs: 30_000, extraArgs: ['-seed=11'] }).done).code).to.equal(0);
    const sets: string[] = [];
    for (const scan of ['avx2', 'sse2', 'portable']) {
      const covdDir = tmp();
      // Inputs named as files: libFuzzer runs each once, nothing else.
      const files = readdirSync(corpus).map((f) => join(corpus, f));
      const r = await runFuzzer(exe, { covdDir, corpus: null, extraArgs: files, env: { COVD_AGENT_SCAN: scan } }).done;
      expect(r.code, r.stderr).to.equal(0);
      const { seen } = await seenIndices(covdDir);
      expect(seen.size).to.be.greaterThan(60);
      sets.push([...seen].sort((a, b) => a - b).join(','));
    }
    expect(sets[1]).to.equal(sets[0]);
    expect(sets[2]).to.equal(sets[0]);
  });

  it('agrees on the sqlite amalgamation (about 47,000 PCs)', async () => {
    const exe = await buildSqliteTarget();
    const seen = await checkAgreement(exe, 3000, 3000);
    expect(seen.size).to.be.greaterThan(3000);
  });
});
