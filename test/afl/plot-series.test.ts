/**
 * Without afl-fuzz: plot_data as series for the chart (parsePlotSeries: columns by the header,
 * percentages as numbers, at most N evenly spaced points with the last row kept, a cut first
 * line and a half-written last one dropped, rows going back in time skipped) and AFL++'s crash
 * and hang file names (parseAflFileName, aflCrashOf).
 */
import { expect } from 'chai';
import { parsePlotHeader, parsePlotSeries } from '../../src/afl/stats.js';
import { aflCrashOf, parseAflFileName } from '../../src/daemon/crashes.js';

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
});
