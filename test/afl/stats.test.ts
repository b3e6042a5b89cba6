/**
 * AFL++ statistics without afl-fuzz: parsing fuzzer_stats and plot_data as AFL++ 4.04c writes
 * them, the merge and total rules, the /metrics lines, and the daemon's watcher on hand-made
 * output directories (instances found, a bad, a FIFO and a foreign-format file skipped with a
 * logged reason, a metadata change moving the target, the findings hook).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AflStatsError, mergeInstance, parseFuzzerStats, parseLastPlotRow, parsePlotHeader, totals } from '../../src/afl/stats.js';
import { AflStatsWatcher, type AflFindings } from '../../src/afl/watcher.js';
import { renderAflMetrics } from '../../src/afl/metrics.js';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { writeCoverageMeta } from '../../src/coverage/meta.js';
import { createLogger } from '../../src/util/log.js';
import type { AflInstance } from '../../src/contracts/hub.js';
import { scratchDirs } from '../helpers/scratch.js';

/** A fuzzer_stats as afl-fuzz 4.04c writes it (every field, in its order). */
function statsText(v: Partial<Record<string, string | number>> = {}): string {
  const f: Record<string, string | number> = {
    start_time: 1796136718, last_update: 1796136724, run_time: 6, fuzzer_pid: process.pid, cycles_done: 5, cycles_wo_finds: 0,
    execs_done: 161629, execs_per_sec: '26911.26', execs_ps_last_min: '0.00', corpus_count: 84, corpus_favored: 29,
    corpus_found: 79, corpus_imported: 3, corpus_variable: 0, max_depth: 4, cur_item: 18, pending_favs: 0, pending_total: 42,
    stability: '99.50%', bitmap_cvg: '39.51%', saved_crashes: 2, saved_hangs: 1, last_find: 1796136722, last_crash: 0,
    last_hang: 0, execs_since_crash: 161629, exec_timeout: 20, slowest_exec_ms: 0, peak_rss_mb: 0, cpu_affinity: -1,
    edges_found: 81, total_edges: 205, var_byte_count: 0, havoc_expansion: 0, auto_dict_entries: 0, testcache_size: 5085,
    testcache_count: 81, testcache_evict: 0, afl_banner: './fuzz', afl_version: '++4.04c', target_mode: 'persistent shmem_testcase deferred ',
    command_line: 'afl-fuzz -V 8 -M main -i in -o out -- ./fuzz', ...v,
  };
  return Object.entries(f).map(([k, x]) => `${k.padEnd(18)}: ${x}`).join('\n') + '\n';
}

const PLOT_HEADER = '# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found';

describe('AFL++ statistics files', () => {
  it('parses fuzzer_stats, with percentages as numbers and inf rates as 0, and names the bad field', () => {
    const s = parseFuzzerStats(statsText());
    expect(s).to.include({
      execs_done: 161629, execs_per_sec: 26911.26, corpus_count: 84, corpus_found: 79, saved_crashes: 2, saved_hangs: 1,
      stability: 99.5, bitmap_cvg: 39.51, cycles_done: 5, last_find: 1796136722, edges_found: 81, fuzzer_pid: process.pid, last_update: 1796136724,
    });
    // At start-up afl-fuzz divides by a run time of 0.
    expect(parseFuzzerStats(statsText({ execs_per_sec: 'inf' })).execs_per_sec).to.equal(0);
    expect(parseFuzzerStats(statsText({ execs_per_sec: '-nan' })).execs_per_sec).to.equal(0);
    expect(() => parseFuzzerStats('garbage\n\u0000\u0001')).to.throw(AflStatsError, /no execs_per_sec field/);
    expect(() => parseFuzzerStats(statsText({ execs_done: '-5' }))).to.throw(AflStatsError, /execs_done is not a non-negative number/);
    expect(() => parseFuzzerStats(statsText({ stability: '250.00%' }))).to.throw(AflStatsError, /stability is out of range/);
    expect(() => parseFuzzerStats(statsText({ fuzzer_pid: 0 }))).to.throw(AflStatsError, /fuzzer_pid/);
    // AFL++ 3.x / AFL names.
    const old = statsText().replace('corpus_count ', 'paths_total  ').replace('saved_crashes', 'unique_crashes');
    expect(parseFuzzerStats(old)).to.include({ corpus_count: 84, saved_crashes: 2 });
  });

  it('takes plot_data\'s last complete row, by its header\'s columns', () => {
    const cols = parsePlotHeader(PLOT_HEADER)!;
    expect(cols).to.have.length(13);
    const rows = `${PLOT_HEADER}\n60, 1, 3, 80, 40, 0, 38.00%, 0, 0, 3, 30000.00, 1500000, 79\n65, 2, 5, 84, 42, 0, 39.51%, 1, 0, 4, 28418.63, 1650000, 81\n70, 2, 5`;
    const last = parseLastPlotRow(rows, cols)!;
    expect(last).to.deep.equal({
      relative_time: 65, cycles_done: 2, corpus_count: 84, saved_crashes: 1, saved_hangs: 0, bitmap_cvg: 39.51,
      execs_per_sec: 28418.63, execs_done: 1650000, edges_found: 81,
    });
    expect(parseLastPlotRow(`${PLOT_HEADER}\n`, cols)).to.equal(null);
    // A tail read from the middle of the file: its first line may be cut, so a single line is no row.
    expect(parseLastPlotRow('5, 0, 38.00%, 0, 0, 3, 30000.00, 1500000, 79\n', cols)).to.equal(null);
    expect(() => parseLastPlotRow(`${PLOT_HEADER}\n1, 2, 3\n`, cols)).to.throw(AflStatsError, /columns/);
  });

  it('merges plot_data only when it is newer, and totals like afl-whatsup', () => {
    const stats = parseFuzzerStats(statsText());
    const cols = parsePlotHeader(PLOT_HEADER)!;
    const row = (t: number) => parseLastPlotRow(`${PLOT_HEADER}\n${t}, 7, 5, 90, 42, 0, 40.00%, 3, 1, 4, 31000.50, 170000, 83\n`, cols);
    // Written in the same second as fuzzer_stats (afl-fuzz's exit writes both): the file wins.
    expect(mergeInstance('main', stats, row(6), true)).to.include({ execs_done: 161629, execs_per_sec: 26911.26, last_update: 1796136724 });
    const newer = mergeInstance('main', stats, row(20), true);
    expect(newer).to.include({ execs_done: 170000, execs_per_sec: 31000.5, corpus_count: 90, saved_crashes: 3, cycles_done: 7, edges_found: 83, last_update: 1796136738 });
    expect(newer).to.include({ stability: 99.5, corpus_found: 79, last_find: 1796136722 }); // fuzzer_stats only

    const a: AflInstance = { ...mergeInstance('main', stats, null, true) };
    const b: AflInstance = { ...a, name: 'sec', alive: false, execs_per_sec: 1000, execs_done: 5, corpus_count: 10, corpus_found: 1, saved_crashes: 4, saved_hangs: 0, stability: 90, bitmap_cvg: 50, cycles_done: 1, last_find: 1796136800, edges_found: 90 };
    const t = totals('/out', [a, b], 123);
    expect(t).to.include({
      dir: '/out', execs_per_sec: 26911.26 /* the dead instance runs nothing */, execs_done: 161634, corpus_count: 94, corpus_found: 80,
      saved_crashes: 6, saved_hangs: 1, stability: 90, bitmap_cvg: 50, cycles_done: 1, last_find: 1796136800, edges_found: 90, updatedAt: 123,
    });
    expect(totals('/out', [], 1)).to.include({ execs_done: 0, stability: 0, last_find: 0 });

    const lines = renderAflMetrics([{ id: '0123456789abcdef', name: 'fuzz', afl: t } as never]);
    expect(lines).to.include('covd_afl_execs_total{target="0123456789abcdef",name="fuzz",instance="main"} 161629');
    expect(lines).to.include('covd_afl_instance_alive{target="0123456789abcdef",name="fuzz",instance="sec"} 0');
    expect(lines).to.include('covd_afl_stability_percent{target="0123456789abcdef",name="fuzz",instance="sec"} 90');
    expect(renderAflMetrics([{ id: 'x', name: 'y' } as never])).to.deep.equal([]);
  });
});

describe('AFL++ statistics watcher', function () {
  this.timeout(30_000);
  const scratch = scratchDirs();
  const ID = '00112233445566aa';

  function setup() {
    const dir = scratch();
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l)) });
    const registry = new TargetRegistry();
    const v = join(dir, 'cov', 'v');
    mkdirSync(v, { recursive: true });
    const file = join(v, ID);
    writeFileSync(file, Buffer.alloc(64));
    registry.add({ id: ID, exe: '/bin/true', coverageFile: file, pcsLen: 1 });
    const watcher = new AflStatsWatcher({ registry, log, pollMs: 60_000 });
    return { dir, lines, registry, watcher, file };
  }

  it('finds the instances of the metadata\'s sync directory and skips bad files with a logged reason', async () => {
    const { dir, lines, registry, watcher, file } = setup();
    try {
      const out = join(dir, 'out');
      for (const n of ['main', 'sec', 'bad', 'fifo', 'notyet']) mkdirSync(join(out, n, 'queue'), { recursive: true });
      writeFileSync(join(out, 'main', 'fuzzer_stats'), statsText());
      writeFileSync(join(out, 'main', 'plot_data'), `${PLOT_HEADER}\n`);
      writeFileSync(join(out, 'sec', 'fuzzer_stats'), statsText({ execs_done: 1000, saved_crashes: 0, stability: '97.25%', fuzzer_pid: 999_999_999 }));
      writeFileSync(join(out, 'bad', 'fuzzer_stats'), 'this is not a stats file\n');
      execFileSync('mkfifo', [join(out, 'fifo', 'fuzzer_stats')]);
      writeCoverageMeta(file, { exe: '/bin/true', buildId: null, pid: process.pid, startTime: Date.now(), argv: ['./fuzz'], engine: 'afl', aflOutDir: join(out, 'sec') });
      const findings: AflFindings[] = [];
      watcher.on('findings', (f: AflFindings) => findings.push(f));

      await watcher.pollNow();
      await watcher.pollNow(); // a parse error counts only when it repeats
      const t = registry.info(ID)!;
      expect(t.engine).to.equal('afl');
      expect(t.afl!.dir).to.equal(out);
      expect(t.afl!.instances.map((i) => i.name)).to.deep.equal(['main', 'sec']);
      const [main, sec] = t.afl!.instances;
      expect(main).to.include({ execs_done: 161629, stability: 99.5, alive: false /* our pid is no afl-fuzz */ });
      expect(sec).to.include({ execs_done: 1000, stability: 97.25, alive: false });
      expect(t.afl).to.include({ execs_done: 162629, saved_crashes: 2, stability: 97.25, execs_per_sec: 0 });
      const skipped = lines.filter((l) => l.msg === 'skipping an AFL++ stats file');
      expect(skipped.map((l) => [String(l.file).split('/').slice(-2).join('/'), l.reason]).sort()).to.deep.equal([
        ['bad/fuzzer_stats', 'no execs_per_sec field'],
        ['fifo/fuzzer_stats', 'is a FIFO; only regular files are read'],
      ]);
      expect(findings.map((f) => [f.instance, f.saved_crashes, f.previous])).to.deep.equal([['main', 2, null], ['sec', 0, null]]);

      // New figures: plot_data newer than fuzzer_stats; a crash more; the bad file repaired.
      writeFileSync(join(out, 'main', 'plot_data'), `${PLOT_HEADER}\n30, 6, 5, 86, 40, 0, 39.60%, 3, 1, 4, 25000.00, 900000, 82\n`);
      writeFileSync(join(out, 'bad', 'fuzzer_stats'), statsText({ execs_done: 7 }));
      await watcher.pollNow();
      const t2 = registry.info(ID)!;
      expect(t2.afl!.instances.map((i) => i.name)).to.deep.equal(['bad', 'main', 'sec']);
      expect(t2.afl!.instances[1]).to.include({ execs_done: 900000, saved_crashes: 3, execs_per_sec: 25000 });
      expect(lines.some((l) => l.msg === 'AFL++ stats file usable again' && String(l.file).endsWith('bad/fuzzer_stats'))).to.equal(true);
      expect(findings.slice(2).map((f) => [f.instance, f.saved_crashes, f.previous?.saved_crashes])).to.deep.equal([['bad', 2, undefined], ['main', 3, 2]]);

      // A new campaign: the metadata names another directory, and the target moves there.
      const out2 = join(dir, 'out2');
      mkdirSync(join(out2, 'default', 'queue'), { recursive: true });
      writeFileSync(join(out2, 'default', 'fuzzer_stats'), statsText({ execs_done: 42 }));
      writeCoverageMeta(file, { exe: '/bin/true', buildId: null, pid: process.pid, startTime: Date.now() + 1, argv: ['./fuzz'], engine: 'afl', aflOutDir: join(out2, 'default') });
      await watcher.pollNow();
      expect(registry.info(ID)!.afl).to.deep.include({ dir: out2, execs_done: 42 });
      expect(registry.info(ID)!.afl!.instances.map((i) => i.name)).to.deep.equal(['default']);
    } finally {
      watcher.close();
    }
  });

  it('follows a directory named by hand (the -o directory or one instance in it); a target without AFL++ gets none', async () => {
    const { dir, registry, watcher } = setup();
    try {
      const out = join(dir, 'campaign');
      mkdirSync(join(out, 'one', 'queue'), { recursive: true });
      writeFileSync(join(out, 'one', 'fuzzer_stats'), statsText({ execs_done: 77 }));
      await watcher.pollNow();
      expect(registry.info(ID)!.engine).to.equal(undefined);
      expect(registry.info(ID)!.afl).to.equal(undefined);
      await watcher.follow(ID, join(out, 'one')); // an instance directory: its parent is the sync directory
      expect(watcher.dirOf(ID)).to.equal(out);
      await watcher.pollNow();
      expect(registry.info(ID)!).to.deep.include({ engine: 'afl' });
      expect(registry.info(ID)!.afl).to.deep.include({ dir: out, execs_done: 77 });
    } finally {
      watcher.close();
    }
  });
});
