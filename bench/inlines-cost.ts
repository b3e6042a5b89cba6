/**
 * What resolving inlined frames (`covd symbolize --inlines`, ResolveOptions.inlines) costs the
 * cold resolve, for bench/NOTES-symbolize.md (run after `npm run build`):
 *
 *   node dist/bench/inlines-cost.js [--rounds N] [--before DIR]
 *
 * In one process, on the sqlite target (buildSqliteTarget) and the C++ example at -O2
 * (buildCppExampleTarget), every pc-table PC: DebugInfo.open + resolve as `covd symbolize`
 * does it (declarations off) with and without inlineFrames, and as the daemon's pool jobs do
 * (declarations on) with and without inlines (pcInlined), rotating which goes first each
 * round. Every resolve opens the file afresh (no parsed table is reused); the JIT is warm after
 * the first round, so the first round's figures are shown apart from the medians. With
 * --before DIR (another build's checkout, its dist/ built), every mode also runs with that
 * build's reader, interleaved in the same rounds, for before/after figures.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildCppExampleTarget, buildSqliteTarget } from '../src/build/targets.js';
import { DebugInfo } from '../src/dwarf/resolve.js';
import { pathToFileURL } from 'node:url';
import { setSymbolizerV8Flags } from '../src/cli/v8-flags.js';

function pcTable(exe: string, dir: string): BigUint64Array {
  const out = join(dir, 'pcs.bin');
  execFileSync('objcopy', ['-O', 'binary', '--only-section=__sancov_pcs', exe, out], { stdio: 'pipe' });
  const b = readFileSync(out);
  const v = new BigUint64Array(b.buffer, b.byteOffset, Math.floor(b.length / 8));
  return BigUint64Array.from({ length: v.length / 2 }, (_, i) => v[2 * i]!);
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]!; };

type Base = 'cli' | 'cli --inlines' | 'daemon' | 'daemon + pcInlined';
type Mode = Base | `${Base} (before)`;
const BASES: Base[] = ['cli', 'cli --inlines', 'daemon', 'daemon + pcInlined'];
type Reader = Pick<typeof DebugInfo, 'open'>;

/** One cold resolve: `covd symbolize` (declarations off) with and without inlined frames; the daemon's (declarations on) with and without pcInlined. */
function time(exe: string, pcs: BigUint64Array, mode: Mode, reader: Reader): { ms: number; frames: number; multi: number } {
  const base = mode.replace(' (before)', '') as Base;
  const opts = base === 'cli' ? { declarations: false } : base === 'cli --inlines' ? { declarations: false, inlineFrames: true }
    : base === 'daemon' ? {} : { inlines: true };
  const t0 = performance.now();
  const ix = reader.open(exe).resolve(pcs, opts);
  const ms = performance.now() - t0;
  let frames = pcs.length, multi = 0;
  const fr = ix.inlineFrames;
  if (fr) {
    frames = fr.fn.length;
    for (let c = 0; c + 1 < fr.start.length; c++) if (fr.start[c + 1]! - fr.start[c]! > 1) multi++;
  }
  return { ms, frames, multi };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, before: { type: 'string' } } });
  const rounds = Number(values.rounds);
  const before: Reader | null = values.before
    ? (await import(pathToFileURL(join(values.before, 'dist', 'src', 'dwarf', 'resolve.js')).href) as { DebugInfo: Reader }).DebugInfo : null;
  const MODES: Mode[] = before ? BASES.flatMap((b): Mode[] => [b, `${b} (before)`]) : BASES;
  setSymbolizerV8Flags();
  const tmp = mkdtempSync(join(tmpdir(), 'covd-inl-'));
  const targets = [['sqlite', await buildSqliteTarget()], ['iniparse -O2', await buildCppExampleTarget({ cflags: ['-O2'] })]] as const;
  console.log(`node ${process.version}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const [name, exe] of targets) {
    const pcs = pcTable(exe, tmp);
    const times = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
    const first = new Map<Mode, number>();
    let frames = 0, multi = 0;
    for (let r = 0; r < rounds; r++) {
      // Rotate which mode goes first.
      for (let j = 0; j < MODES.length; j++) {
        const mode = MODES[(j + r) % MODES.length]!;
        const got = time(exe, pcs, mode, mode.endsWith('(before)') ? before! : DebugInfo);
        if (r === 0) first.set(mode, got.ms); else times.get(mode)!.push(got.ms);
        if (mode === 'cli --inlines') { frames = got.frames; multi = got.multi; }
      }
    }
    console.log(`${name}: ${pcs.length} PCs, ${multi} with inlined frames, ${frames} frames in all`);
    for (const mode of MODES) {
      console.log(`  ${mode.padEnd(29)} first round ${first.get(mode)!.toFixed(0).padStart(5)} ms` + (rounds > 1 ? `, median of ${rounds - 1} ${median(times.get(mode)!).toFixed(0).padStart(5)} ms` : ''));
    }
  }
  console.log(`load average at end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  rmSync(tmp, { recursive: true, force: true });
}

await main();
