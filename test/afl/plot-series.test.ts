/**
 * Without afl-fuzz: plot_data as series for the chart (parsePlotSeries: columns by the header,
 * percentages as numbers, at most N evenly spaced points with the last row kept, a cut first
 * line and a half-written last one dropped, rows going back in time skipped) and AFL++'s crash
 * and hang file names (parseAflFileName, aflCrashOf); and the watcher's series on a hand-made
 * sync directory: rows appended to plot_data become new points with only the new bytes read, an
 * unchanged file is not read again, concurrent requests share one computation, and a 4 MiB file
 * gives at most 1000 points without holding the event loop much longer than a small one.
 */
import { expect } from 'chai';
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePlotHeader, parsePlotSeries, PlotSeriesBuilder } from '../../src/afl/stats.js';
import { AflStatsWatcher } from '../../src/afl/watcher.js';
import { aflCrashOf, parseAflFileName } from '../../src/daemon/crashes.js';
import { TargetRegistry } from '../../src/daemon/registry.js';
import { createLogger } from '../../src/util/log.js';
import { scratchDirs } from '../helpers/scratch.js';

const HEADER = '# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found';
const row = (t: number, corpus: number, map: string, crashes: number, eps: string) => `${t}, 0, 0, ${corpus}, 0, 0, ${map}, ${crashes}, 0, 2, ${eps}, ${t * 1000}, ${corpus + 10}`;

describe('AFL++ plot_data series and file names', () => {
  const cols = parsePlotHeader(HEADER)!;

  it('gives every row as series, by the header\'s columns, times after start_time', () => {
    const text = [HEADER, row(60, 5, '1.50%', 0, '100.25'), row(65, 7, '2.00%', 1, 'inf'), row(70, 9, '2.25%', 1, '300.00'), ''].join('\n');
    const s = parsePlotSeries(text, cols, 1000, 1000, false);
    expect(s.rows).to.equal(3);
    expect(s.points).to.equal(3);
    expect(s.t).to.deep.equal([1060, 1065, 1070]);
    expect(s.series.corpus_count).to.deep.equal([5, 7, 9]);
    expect(s.series.map_size).to.deep.equal([1.5, 2, 2.25]);
    expect(s.series.saved_crashes).to.deep.equal([0, 1, 1]);
    expect(s.series.execs_per_sec).to.deep.equal([100.25, 0, 300]);
    expect(s.series.edges_found).to.deep.equal([15, 17, 19]);
    expect(Object.keys(s.series)).to.not.include('relative_time');
  });

  it('keeps at most N points, evenly spaced, the last row always; drops a cut first and a torn last line', () => {
    const rows = Array.from({ length: 101 }, (_, i) => row(60 + 5 * i, i, '1.00%', 0, '1.0'));
    const s = parsePlotSeries(rows.join('\n') + '\n', cols, 0, 11, false);
    expect(s.rows).to.equal(101);
    expect(s.points).to.equal(11);
    expect(s.series.corpus_count).to.deep.equal([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    const cut = parsePlotSeries('9, 0, 0, 99, 0\n' + rows.slice(0, 3).join('\n') + '\n' + '75, 0, 0, 4', cols, 0, 100, true);
    expect(cut.series.corpus_count).to.deep.equal([0, 1, 2]);
    const back = parsePlotSeries([row(70, 1, '1%', 0, '1'), row(65, 2, '1%', 0, '1'), row(75, 3, '1%', 0, '1'), 'garbage, x', ''].join('\n'), cols, 0, 100, false);
    expect(back.series.corpus_count).to.deep.equal([1, 3]);
  });

  it('reads afl-fuzz\'s crash and hang file names', () => {
    expect(parseAflFileName('id:000003,sig:11,src:000001,time:1234,execs:5678,op:havoc,rep:4')).to.deep.equal({ id: 3, sig: 11, time: 1234, execs: 5678 });
    expect(parseAflFileName('id:000000,src:000002,time:40,execs:77,op:havoc,rep:2')).to.deep.equal({ id: 0, sig: null, time: 40, execs: 77 });
    expect(parseAflFileName('id:000001,sig:00,sync:main,src:000004')).to.deep.equal({ id: 1, sig: 0, time: null, execs: null });
    expect(aflCrashOf('crashes', 11)).to.deep.equal({ kind: 'signal', detail: 'SIGSEGV', signo: 11 });
    expect(aflCrashOf('crashes', 6).detail).to.equal('SIGABRT');
    expect(aflCrashOf('crashes', 0).kind).to.equal('exit');
    expect(aflCrashOf('hangs', null)).to.deep.equal({ kind: 'timeout', detail: 'afl-fuzz: hang', signo: 0 });
  });

  it('thins rows as they come, keeping at most 2 * cap of them, the same as parsePlotSeries up to that', () => {
    const rows = Array.from({ length: 5000 }, (_, i) => row(60 + 5 * i, i, '1.00%', 0, '1.0'));
    const text = [HEADER, ...rows, ''].join('\n');
    const small = new PlotSeriesBuilder(cols, 100);
    small.addLines([HEADER, ...rows.slice(0, 150)].join('\n'));
    expect(small.result(0, 100)).to.deep.equal(parsePlotSeries([HEADER, ...rows.slice(0, 150), ''].join('\n'), cols, 0, 100, false));
    const b = new PlotSeriesBuilder(cols, 100);
    for (let i = 0; i < rows.length; i += 7) b.addLines(rows.slice(i, i + 7).join('\n'));
    const s = b.result(1000, 100);
    expect(s.rows).to.equal(5000);
    expect(s.points).to.equal(100);
    expect(s.series.corpus_count![0]).to.equal(0);
    expect(s.series.corpus_count![99], 'the newest row').to.equal(4999);
    expect(s.t[99]).to.equal(1000 + 60 + 5 * 4999);
    const gaps = s.series.corpus_count!.slice(1).map((v, k) => v - s.series.corpus_count![k]!);
    expect(Math.max(...gaps), 'evenly spaced').to.be.at.most(2 * Math.min(...gaps.slice(0, -1)));
    expect((b as unknown as { kept: unknown[] }).kept.length).to.be.at.most(200);
    expect(parsePlotSeries(text, cols, 1000, 100, false).series.corpus_count![99]).to.equal(4999);
  });
});

describe('AFL++ plot_data series from the watcher', function () {
  this.timeout(120_000);
  const scratch = scratchDirs();
  const START = 1796136718;
  const stats = () => ['start_time', 'last_update', 'fuzzer_pid', 'execs_per_sec', 'execs_done', 'corpus_count', 'corpus_found', 'saved_crashes', 'saved_hangs',
    'stability', 'bitmap_cvg', 'cycles_done', 'last_find', 'edges_found'].map((k) => `${k.padEnd(18)}: ${k === 'start_time' ? START : k === 'fuzzer_pid' ? 999_999_999 : k.endsWith('cvg') || k === 'stability' ? '50.00%' : 1}`).join('\n') + '\n';
  const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => row(60 + 5 * (from + i), from + i, '1.25%', 0, '99.5') + '\n').join('');

  /** A registry target following a hand-made sync directory with one instance whose plot_data is `plot`. */
  async function setup(id: string, plot: string) {
    const dir = scratch();
    const registry = new TargetRegistry();
    registry.add({ id, exe: '/bin/true', coverageFile: join(dir, 'cov'), pcsLen: 1 });
    const watcher = new AflStatsWatcher({ registry, log: createLogger({ level: 'silent' }), pollMs: 60_000 });
    const inst = join(dir, 'out', 'main');
    mkdirSync(join(inst, 'queue'), { recursive: true });
    writeFileSync(join(inst, 'fuzzer_stats'), stats());
    writeFileSync(join(inst, 'plot_data'), plot);
    await watcher.follow(id, inst);
    await watcher.pollNow();
    return { watcher, file: join(inst, 'plot_data') };
  }

  /** The longest the event loop went without running a 1 ms interval while `fn` ran. */
  async function stallOf<T>(fn: () => Promise<T>): Promise<{ value: T; stall: number }> {
    let last = performance.now(), stall = 0;
    const probe = setInterval(() => { const now = performance.now(); stall = Math.max(stall, now - last); last = now; }, 1);
    try {
      await new Promise((r) => setTimeout(r, 20));
      last = performance.now();
      const value = await fn();
      stall = Math.max(stall, performance.now() - last);
      return { value, stall };
    } finally {
      clearInterval(probe);
    }
  }

  it('gives appended rows as new points, reading only them; an unchanged file is not read again', async () => {
    const ID = '00112233445566a1';
    const { watcher, file } = await setup(ID, `${HEADER}\n${rows(0, 10)}`);
    try {
      const a = (await watcher.plotSeries(ID))!;
      expect(a.instances.map((i) => i.name)).to.deep.equal(['main']);
      expect(a.instances[0]).to.include({ rows: 10, points: 10, truncated: false, startTime: START });
      expect(a.instances[0]!.t).to.deep.equal(Array.from({ length: 10 }, (_, i) => START + 60 + 5 * i));
      const io = { ...watcher.plotReads };
      expect(io.reads).to.be.greaterThan(0);

      // Unchanged: nothing read, the same series.
      const b = (await watcher.plotSeries(ID))!;
      expect(b).to.deep.equal(a);
      expect(watcher.plotReads).to.deep.equal(io);

      // Concurrent requests share one computation.
      const p1 = watcher.plotSeries(ID), p2 = watcher.plotSeries(ID);
      expect(p1).to.equal(p2);
      await p1;

      // Appended: the new rows are new points, and only their bytes are read.
      const more = rows(10, 5);
      appendFileSync(file, more);
      const c = (await watcher.plotSeries(ID))!;
      expect(c.instances[0]).to.include({ rows: 15, points: 15 });
      expect(c.instances[0]!.series.corpus_count).to.deep.equal(Array.from({ length: 15 }, (_, i) => i));
      expect(c.instances[0]!.t.at(-1)).to.equal(START + 60 + 5 * 14);
      expect(watcher.plotReads.bytes - io.bytes).to.equal(Buffer.byteLength(more));
      // The same as parsing the whole file.
      const whole = `${HEADER}\n${rows(0, 15)}`;
      expect(c.instances[0]).to.deep.equal({ name: 'main', truncated: false, ...parsePlotSeries(whole, parsePlotHeader(HEADER)!, START, 1000, false) });

      // A row being written is not a point until its newline arrives.
      appendFileSync(file, row(60 + 5 * 15, 15, '1.25%', 0, '99.5').slice(0, 10));
      expect((await watcher.plotSeries(ID))!.instances[0]!.rows).to.equal(15);
      appendFileSync(file, row(60 + 5 * 15, 15, '1.25%', 0, '99.5').slice(10) + '\n');
      expect((await watcher.plotSeries(ID))!.instances[0]!.series.corpus_count!.at(-1)).to.equal(15);

      // A new file (a new campaign) in its place is read anew.
      writeFileSync(`${file}.new`, `${HEADER}\n${rows(100, 3)}`);
      renameSync(`${file}.new`, file);
      const d = (await watcher.plotSeries(ID))!;
      expect(d.instances[0]).to.include({ rows: 3 });
      expect(d.instances[0]!.series.corpus_count).to.deep.equal([100, 101, 102]);
    } finally {
      watcher.close();
    }
  });

  it('a 4 MiB plot_data: at most 1000 points, the newest kept, the event loop not held much longer than for a small file', async () => {
    const small = await setup('00112233445566a2', `${HEADER}\n${rows(0, 200)}`);
    let big: Awaited<ReturnType<typeof setup>> | undefined;
    try {
      const smallStall = (await stallOf(() => small.watcher.plotSeries('00112233445566a2'))).stall;
      let n = 0;
      const parts = [`${HEADER}\n`];
      for (let len = parts[0]!.length; len < (4 << 20) + (64 << 10); n += 1000) { const r = rows(n, 1000); parts.push(r); len += r.length; }
      const text = parts.join('');
      big = await setup('00112233445566a3', text);
      // Best of three cold reads (a new file each time), against a loaded machine's hiccups.
      let bigStall = Infinity;
      let plot;
      for (let k = 0; k < 3; k++) {
        writeFileSync(`${big.file}.new`, text);
        renameSync(`${big.file}.new`, big.file);
        const m = await stallOf(() => big!.watcher.plotSeries('00112233445566a3'));
        bigStall = Math.min(bigStall, m.stall);
        plot = m.value!;
      }
      const inst = plot!.instances[0]!;
      expect(inst.truncated).to.equal(true);
      expect(inst.points).to.equal(1000);
      expect(inst.rows).to.be.within(n - 8000, n - 1);
      expect(inst.series.corpus_count!.at(-1), 'the newest row').to.equal(n - 1);
      expect(inst.t.at(-1)).to.equal(START + 60 + 5 * (n - 1));
      console.log(`      event loop stall: ${smallStall.toFixed(1)} ms for a small plot_data, ${bigStall.toFixed(1)} ms for ${(text.length / 1048576).toFixed(2)} MiB`);
      expect(bigStall, `stall ${bigStall.toFixed(1)} ms for 4 MiB vs ${smallStall.toFixed(1)} ms for a small file`).to.be.below(smallStall + 250);

      // Rows appended after it: new points, the count still bounded, only the new bytes read.
      const before = big.watcher.plotReads.bytes;
      const more = rows(n, 3);
      appendFileSync(big.file, more);
      const after = (await big.watcher.plotSeries('00112233445566a3'))!.instances[0]!;
      expect(after.rows).to.equal(inst.rows + 3);
      expect(after.points).to.equal(1000);
      expect(after.series.corpus_count!.at(-1)).to.equal(n + 2);
      expect(big.watcher.plotReads.bytes - before).to.equal(more.length);
    } finally {
      small.watcher.close();
      big?.watcher.close();
    }
  });
});
