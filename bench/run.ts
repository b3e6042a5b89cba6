/**
 * `npm run bench`: runs every benchmark of bench/ (each is also runnable alone), one process
 * each, one after the other, prints their tables as they come, writes a summary JSON under
 * bench/results/, and regenerates BENCHMARKS.md from what ran.
 *
 *   npm run bench                                  all parts, full length (~20 min on 2 cores)
 *   npm run bench -- --quick                       all parts, shortened
 *   npm run bench -- --only latency,memory         some parts
 *   npm run bench -- --skip browser --soak-seconds 600
 *   npm run bench -- --list                        the parts and the exact commands
 *
 * BENCHMARKS.md keeps one section per part between markers; a run replaces the sections of the
 * parts it ran and keeps the others, so running one part refreshes only its tables.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machine, repoRoot, table, writeResults } from './lib/results.js';

export interface Part {
  name: string;
  title: string;
  /** What is measured against what, and the goal, in a sentence or two. */
  about: string;
  /** Flags of a full run and of a --quick run (each part has its own flags). */
  full: string[];
  quick: string[];
  /** bench/NOTES-<notes>.md holds the owner's discussion of these figures. */
  notes?: string;
}

export const parts: Part[] = [
  {
    name: 'symbolize', notes: 'symbolize', title: 'Symbolization',
    about: 'covd against `addr2line` and `llvm-symbolizer-14` on the sqlite target\'s PCs, and the growth curve on generated 100k / 300k / 1M-PC programs (time and peak memory).',
    full: [], quick: ['--rounds', '1', '--sizes', '100000'],
  },
  {
    name: 'cpp', notes: 'symbolize', title: 'C++ and inlined code',
    about: 'What demangling and the inlined code (per PC the innermost inlined function and its call site) cost the daemon on the sqlite target and the C++ example (clang-14 -O1, -O2): its first request, after which a target is ready, with demangling off and on (paired round by round), and its second pass, the inlined code alone, against the first request (within each run), on a pool made as `covd serve` makes it. Goal: neither adds more than 15 % (CPU).',
    full: [], quick: ['--rounds', '3'],
  },
  {
    name: 'cli', notes: 'cli', title: 'Command line',
    about: 'Whole-process time of `covd --help` and of `covd symbolize` of one address on a small clang-14 -g binary, against `node -e 0` (the floor of any Node program) and `llvm-symbolizer-14` on the same address, interleaved; and which modules `covd --help`, `covd list` and `covd symbolize` load. Goals: `covd --help` < 100 ms, `covd symbolize` within 3x llvm-symbolizer-14.',
    full: [], quick: ['--quick'],
  },
  {
    name: 'fanout', notes: 'web', title: 'Fan-out',
    about: '1,000 tabs on a 1,000,000-PC target: covd\'s uWebSockets.js server against a `ws`-based server doing the same work (updates per second, CPU, bytes on the wire per update).',
    full: [], quick: ['--tabs', '300', '--rounds', '3'],
  },
  {
    name: 'latency', notes: 'load', title: 'Latency',
    about: 'From a new PC in the coverage file to every one of 100 tabs having it, with the producer\'s notification and with the 500 ms poll alone. Goals: p99 < 50 ms notified, < 600 ms by poll.',
    full: [], quick: ['--quick'],
  },
  {
    name: 'agent-overhead', notes: 'agent', title: 'Agent overhead',
    about: 'libFuzzer executions per second on the sqlite target with and without the covd agent. Goal: the agent keeps >= 90 % of plain libFuzzer\'s exec/s.',
    full: [], quick: ['--rounds', '1', '--runs-empty', '200000', '--runs-seeds', '5000'],
  },
  {
    name: 'afl-overhead', notes: 'afl', title: 'AFL++ agent overhead',
    about: 'afl-fuzz executions per second on the sqlite target built with `covd cc --engine=afl`, with and without the covd agent (the same instrumentation either way). Goal: the agent keeps >= 90 % of the exec/s of the build without it.',
    full: [], quick: ['--rounds', '1', '--execs', '100000'],
  },
  {
    name: 'memory', notes: 'load', title: 'Memory',
    about: 'The daemon\'s resident memory with 50 targets, one of them 1,000,000 PCs, and 1,000 tabs. Goal: < 300 MB.',
    full: [], quick: ['--quick'],
  },
  {
    name: 'browser', notes: 'ui', title: 'Browser',
    about: 'Navigation to a painted sqlite3.c with coverage and scroll frame times in chromium, covd\'s source view against genhtml\'s report.',
    // Two loads of each viewer keep the whole run within ~20 minutes (genhtml's page is slow to load).
    full: ['--reps', '2'], quick: ['--reps', '1', '--fuzz-seconds', '5'],
  },
  {
    name: 'tick', notes: 'daemon', title: 'Coverage-thread tick',
    about: 'Cost of one coverage-thread tick on a 1M-PC file and on 50 idle targets, and the per-tick fan-out cost against the seed\'s copy-the-bitmap-per-subscriber approach.',
    full: [], quick: ['--iters', '50'],
  },
  {
    name: 'fleet', notes: 'fleet', title: 'Fleet',
    about: 'One viewing daemon (`covd serve --nats`) holding simulated fleets of 10, 50 and 200 nodes (in-process publishers speaking the real protocol to a real nats-server on loopback), each node with the same 10 targets of 50,000 PCs: the viewer\'s CPU and memory, the time from a node\'s new PC to a WebSocket client of the viewer, and bytes per node per minute, then how those bytes scale with new coverage and with PCs. Goal: 200 nodes on this machine, new coverage visible in < 1 s.',
    full: [], quick: ['--quick'],
  },
  {
    name: 'soak', notes: 'load', title: 'Soak and faults',
    about: 'Three real fuzzers, 100 tabs connecting and dropping at random, periodic `covd add` / `covd remove`, and five faults (fuzzer killed, coverage file truncated, symbolizer thread killed, executable rebuilt, daemon SIGKILLed). Pass/fail verdict.',
    full: ['--seconds', '240'], quick: ['--seconds', '120'],
  },
];

export interface PartRun {
  name: string;
  command: string;
  exitCode: number | null;
  seconds: number;
  date: string;
  /** What the part printed on stdout (its tables), with machine-specific paths removed. */
  output: string;
}

const USAGE = `usage: node dist/bench/run.js [options]     (npm run bench -- [options])

options:
  --only a,b          run only these parts
  --skip a,b          run all parts but these
  --quick             shortened runs (each part's quick flags; see --list)
  --soak-seconds N    soak length (default 240; 120 with --quick)
  --no-markdown       do not rewrite BENCHMARKS.md
  --markdown-only     only rewrite BENCHMARKS.md (goals from bench/results/*.json), run nothing
  --list              print the parts and their commands, run nothing
  -h, --help          this text

parts: ${parts.map((p) => p.name).join(', ')}`;

/** Removes absolute paths of this machine from a part's output (they must not be committed). */
export function sanitize(text: string): string {
  const root = repoRoot.replace(/\/$/, '');
  return text
    .split('\n')
    .filter((l) => !/^\s*(results\s*:|wrote\b|written\b|json\s*:)/i.test(l))
    .map((l) => l.split(root + '/').join('').split(root).join('.'))
    .map((l) => l.replace(new RegExp(`${tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[^\\s'"\`)]*`, 'g'), '<tmp>'))
    .join('\n')
    .trim();
}

function commandOf(p: Part, flags: string[]): string {
  return ['node', `dist/bench/${p.name}.js`, ...flags].join(' ');
}

function runPart(p: Part, flags: string[]): Promise<PartRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'dist', 'bench', `${p.name}.js`), ...flags], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      out += s;
      process.stdout.write(s);
    });
    child.on('close', (code) => resolve({
      name: p.name, command: commandOf(p, flags), exitCode: code, seconds: (Date.now() - started) / 1000, date: new Date(started).toISOString(), output: sanitize(out),
    }));
  });
}

// ---------------------------------------------------------------- BENCHMARKS.md

const begin = (name: string) => `<!-- bench:${name} -->`;
const end = (name: string) => `<!-- /bench:${name} -->`;

function machineLine(): string {
  const m = machine() as { node: string; cpus: number; cpuModel?: string; memGiB: number; platform: string };
  return `${m.cpus} × ${m.cpuModel ?? 'unknown CPU'}, ${m.memGiB} GiB RAM, ${m.platform}, Node ${m.node}`;
}

/** The part's notes file: NOTES-<notes>.md, else any NOTES-*.md that gives the part's command. */
function notesFor(p: Part): string | undefined {
  const dir = join(repoRoot, 'bench');
  const named = `NOTES-${p.notes ?? p.name}.md`;
  if (existsSync(join(dir, named))) return named;
  return readdirSync(dir).filter((f) => /^NOTES-.*\.md$/.test(f)).sort().find((f) => readFileSync(join(dir, f), 'utf8').includes(`dist/bench/${p.name}.js`));
}

function section(p: Part, r: PartRun): string {
  const status = r.exitCode === 0 ? 'completed' : `**exited with status ${r.exitCode}** (figures below may be partial)`;
  const n = notesFor(p);
  const notes = n ? ` Discussion: [bench/${n}](bench/${n}).` : '';
  return [
    begin(p.name),
    `## ${p.title}`,
    '',
    p.about + notes,
    '',
    `Run ${r.date.slice(0, 16).replace('T', ' ')} UTC on ${machineLine()}; ${r.seconds.toFixed(0)} s; ${status}.`,
    '',
    '```sh',
    r.command,
    '```',
    '',
    r.output || '_(no output)_',
    end(p.name),
  ].join('\n');
}

/** One row per goal of issue 7 that a part's JSON results let us judge: [goal, measured, verdict]. */
function goalRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  const read = (name: string): any => {
    try {
      return JSON.parse(readFileSync(join(repoRoot, 'bench', 'results', `${name}.json`), 'utf8')).data;
    } catch {
      return undefined;
    }
  };
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  const lat = read('latency');
  for (const m of (lat?.modes ?? []) as { mode: string; p50: number; p99: number; max: number; goalMs: number; pass: boolean }[]) {
    rows.set(`latency, ${m.mode}`, [`latency to all ${lat.tabs} tabs, ${m.mode}: p99 < ${m.goalMs} ms`, `p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, max ${m.max.toFixed(0)} ms`, verdict(m.pass)]);
  }
  const mem = read('memory');
  if (mem?.stages) {
    const worst = Math.max(...(mem.stages as { rssMiB: number }[]).map((x) => x.rssMiB));
    rows.set('memory', [`daemon RSS, ${mem.targets} targets (one of ${Number(mem.bigPcs).toLocaleString('en-US')} PCs), ${mem.tabs} tabs: < ${mem.goalMiB} MB`, `${worst.toFixed(0)} MiB as the systemd unit runs it (stages: ${(mem.stages as { stage: string; rssMiB: number }[]).map((x) => `${x.stage} ${x.rssMiB.toFixed(0)}`).join(', ')})` +
      (mem.byHand?.stages ? `; started by hand ${Math.max(...(mem.byHand.stages as { rssMiB: number }[]).map((x) => x.rssMiB)).toFixed(0)} MiB` : ''), verdict(!!mem.pass)]);
  }
  const agent = read('agent-overhead');
  if (Array.isArray(agent?.summary)) {
    const a = (agent.summary as { corpus: string; config: string; cpuRatio: number }[]).filter((x) => x.config === 'covd agent');
    if (a.length) rows.set('agent', ['agent overhead: >= 90 % of plain libFuzzer exec/s (CPU time)', a.map((x) => `${x.corpus} ${(x.cpuRatio * 100).toFixed(1)} %`).join(', '), verdict(a.every((x) => x.cpuRatio >= 0.9))]);
  }
  const afl = read('afl-overhead');
  if (Array.isArray(afl?.summary)) {
    const a = (afl.summary as { config: string; pairedCpuRatio: number; pairedAflRatio: number }[]).find((x) => x.config === 'AFL++ + covd agent');
    if (a) rows.set('afl', ['AFL++ agent overhead: >= 90 % of the exec/s of the build without the agent', `afl-fuzz exec/s ${(a.pairedAflRatio * 100).toFixed(1)} %, per CPU second ${(a.pairedCpuRatio * 100).toFixed(1)} % (paired medians)`, verdict(a.pairedAflRatio >= 0.9 && a.pairedCpuRatio >= 0.9)]);
  }
  const fleet = read('fleet');
  if (fleet?.goal) {
    const g = fleet.goal as { nodes: number; p99: number; pass: boolean };
    const run = (fleet.runs as { nodes: number; viewerCpuPct: number; viewerRssMiB: number; seenPcs: number; newPcs: number }[]).find((x) => x.nodes === g.nodes);
    rows.set('fleet', [`fleet: ${g.nodes} nodes held by one viewing daemon, new coverage visible in < 1 s`, `p99 ${g.p99.toFixed(0)} ms${run ? `, ${run.seenPcs} of ${run.newPcs} new PCs seen, viewer CPU ${run.viewerCpuPct.toFixed(1)} %, RSS ${run.viewerRssMiB.toFixed(0)} MiB` : ''}`, verdict(g.pass)]);
  }
  const cli = read('cli');
  if (cli?.goals) {
    const g = cli.goals as { helpMs: number; helpPass: boolean; symbolizeOverLlvm: number; symbolizePass: boolean; floorMs: number; floorOverLlvm: number; helpAboveFloorMs: number; symbolizeAboveFloorMs: number };
    rows.set('cli help', ['`covd --help` < 100 ms', `${g.helpMs.toFixed(0)} ms (node -e 0: ${g.floorMs.toFixed(0)} ms; ${g.helpAboveFloorMs.toFixed(0)} ms above it)`, verdict(g.helpPass)]);
    rows.set('cli symbolize', ['`covd symbolize` of one address within 3x llvm-symbolizer-14', `${g.symbolizeOverLlvm.toFixed(1)}x (node -e 0 alone: ${g.floorOverLlvm.toFixed(1)}x; ${g.symbolizeAboveFloorMs.toFixed(0)} ms above it)`, verdict(g.symbolizePass)]);
  }
  const cpp = read('cpp');
  if (Array.isArray(cpp?.targets)) {
    const t = cpp.targets as { target: string; demanglingCpu: number; inlinedCpu: number }[];
    const pct = (x: number) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(0)} %`;
    rows.set('cpp demangling', ['demangling: the first request costs at most 15 % more (CPU)', t.map((x) => `${x.target.replace(', pc-table', '')} ${pct(x.demanglingCpu)}`).join(', '), verdict(!!cpp.demanglingPass)]);
    rows.set('cpp inlined', ['inlined code: a new build costs at most 15 % more (CPU; the first request does not wait for it)', t.map((x) => `${x.target.replace(', pc-table', '')} ${pct(x.inlinedCpu)}`).join(', '), verdict(!!cpp.inlinedPass)]);
  }
  const soak = read('soak');
  if (soak?.checks) {
    const failed = (soak.checks as { name: string; pass: boolean }[]).filter((c) => !c.pass).map((c) => c.name);
    rows.set('soak', [`soak (${soak.seconds} s) and five faults: every check passes`, failed.length ? `failed: ${failed.join(', ')}` : `${soak.checks.length} checks, ${soak.faults.length} faults passed`, verdict(!!soak.pass)]);
  }
  return rows;
}

/** Rewrites BENCHMARKS.md: sections of the parts in `runs` replaced, the others kept as they were. */
export function writeBenchmarksMd(runs: PartRun[]): string {
  const file = join(repoRoot, 'BENCHMARKS.md');
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const kept = (name: string): string | undefined => {
    const a = old.indexOf(begin(name));
    const b = old.indexOf(end(name));
    return a >= 0 && b > a ? old.slice(a, b + end(name).length) : undefined;
  };
  const byName = new Map(runs.map((r) => [r.name, r]));
  const summary: (string | number)[][] = [['part', 'last run (UTC)', 'time (s)', 'status', 'command']];
  const sections: string[] = [];
  for (const p of parts) {
    const r = byName.get(p.name);
    const s = r ? section(p, r) : kept(p.name);
    if (!s) continue;
    sections.push(s);
    const date = /Run (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/.exec(s)?.[1] ?? '?';
    const secs = /; (\d+) s; /.exec(s)?.[1] ?? '?';
    const status = /; (completed|\*\*exited with status [^*]+\*\*)/.exec(s)?.[1]?.replace(/\*/g, '') ?? '?';
    const cmd = /```sh\n([^\n]+)\n```/.exec(s)?.[1] ?? '';
    summary.push([`[${p.title}](#${p.title.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')})`, date, secs, status, `\`${cmd}\``]);
  }
  const notes = readdirSync(join(repoRoot, 'bench')).filter((f) => /^NOTES-.*\.md$/.test(f)).sort();
  // Goals: from this machine's results where present, else the row BENCHMARKS.md already had.
  const goals = goalRows();
  const oldGoals = /<!-- goals -->([\s\S]*?)<!-- \/goals -->/.exec(old)?.[1] ?? '';
  const goalKeys = ['latency, notified', 'latency, poll', 'memory', 'agent', 'afl', 'soak', 'fleet', 'cli help', 'cli symbolize', 'cpp demangling', 'cpp inlined'];
  const goalTable: string[][] = [['goal', 'measured', 'verdict']];
  for (const k of goalKeys) {
    const row = goals.get(k) ?? oldGoals.split('\n').find((l) => l.includes(`<!-- ${k} -->`))?.split(' | ').slice(0, 3).map((c) => c.replace(/^\| /, '').replace(/<!--.*-->/, '').replace(/\s*\|\s*$/, '').trim());
    if (row) goalTable.push([row[0]!, row[1]!, `${row[2]} <!-- ${k} -->`]);
  }
  const md = [
    '# covd benchmarks',
    '',
    'Generated by `npm run bench` (bench/run.ts) from the runs themselves; do not edit by hand.',
    'Every part measures covd and its peer in the same run on the same machine; each section names',
    'the machine, the date and the exact command. Figures are medians of several rounds where the',
    'part says so. Machine-readable results: `bench/results/<part>.json` (not committed).',
    '',
    '## How to rerun',
    '',
    '```sh',
    'npm run bench                                   # every part, full length (~20 min on 2 cores)',
    'npm run bench -- --quick                        # every part, shortened',
    'npm run bench -- --only latency,memory          # some parts (the other sections stay as they are)',
    'npm run bench -- --list                         # the parts and their exact commands',
    'npm run build && node dist/bench/latency.js     # one part on its own',
    '```',
    '',
    '## Goals',
    '',
    '<!-- goals -->',
    table(goalTable),
    '<!-- /goals -->',
    '',
    'Fan-out, symbolization, browser and tick figures are judged against their peers in their sections.',
    '',
    '## Summary',
    '',
    table(summary),
    '',
    ...(notes.length ? ['Notes by part: ' + notes.map((n) => `[${n}](bench/${n})`).join(', ') + '.', ''] : []),
    sections.join('\n\n'),
    '',
  ].join('\n');
  writeFileSync(file, md);
  return file;
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        only: { type: 'string' }, skip: { type: 'string' }, quick: { type: 'boolean' }, 'soak-seconds': { type: 'string' },
        'no-markdown': { type: 'boolean' }, 'markdown-only': { type: 'boolean' }, list: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const names = new Set(parts.map((p) => p.name));
  const listOf = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);
  for (const n of [...listOf(values.only), ...listOf(values.skip)]) {
    if (!names.has(n)) {
      console.error(`bench: unknown part '${n}' (parts: ${[...names].join(', ')})`);
      return 2;
    }
  }
  const only = listOf(values.only), skip = listOf(values.skip);
  const chosen = parts.filter((p) => (only.length ? only.includes(p.name) : true) && !skip.includes(p.name));
  const flagsOf = (p: Part) => {
    const f = [...(values.quick ? p.quick : p.full)];
    if (p.name === 'soak' && values['soak-seconds']) {
      const i = f.indexOf('--seconds');
      if (i >= 0) f.splice(i, 2);
      f.push('--seconds', values['soak-seconds']);
    }
    return f;
  };
  if (values['markdown-only']) {
    console.log(`rewrote ${writeBenchmarksMd([])}`);
    return 0;
  }
  if (values.list) {
    for (const p of parts) console.log(`${p.name.padEnd(15)} ${commandOf(p, flagsOf(p))}`);
    return 0;
  }

  const runs: PartRun[] = [];
  const t0 = Date.now();
  for (const p of chosen) {
    if (!existsSync(join(repoRoot, 'dist', 'bench', `${p.name}.js`))) {
      console.error(`\n== ${p.name}: dist/bench/${p.name}.js is missing (not built?); skipped`);
      continue;
    }
    console.log(`\n== ${p.title}: ${commandOf(p, flagsOf(p))}\n`);
    const r = await runPart(p, flagsOf(p));
    runs.push(r);
    console.log(`\n== ${p.name}: ${r.exitCode === 0 ? 'done' : `exit status ${r.exitCode}`} in ${r.seconds.toFixed(0)} s`);
  }
  const total = (Date.now() - t0) / 1000;
  writeResults('run', { quick: !!values.quick, seconds: total, runs: runs.map(({ output: _o, ...r }) => r) });
  console.log('\n' + table([['part', 'time (s)', 'status'], ...runs.map((r) => [r.name, Math.round(r.seconds), r.exitCode === 0 ? 'ok' : `exit ${r.exitCode}`]), ['total', Math.round(total), '']]));
  if (!values['no-markdown'] && runs.length) {
    writeBenchmarksMd(runs);
    console.log(`\nBENCHMARKS.md updated (${runs.length} part${runs.length === 1 ? '' : 's'})`);
  }
  return runs.every((r) => r.exitCode === 0) ? 0 : 1;
}

process.exitCode = await main();
