/**
 * `npm run bench`'s C++ part: what demangling and the inlined code cost the daemon, on the
 * sqlite target and the C++ example (examples/iniparse, -O1 and -O2). It runs
 * `measure-demangle.js daemon` (the daemon's requests on a pool made as `covd serve` makes it:
 * the first request, after which a target is ready, with demangling off and on, and the second
 * pass, the inlined code alone) and keeps its figures in bench/results/cpp.json for the goals
 * table. Goal (#11): neither adds more than 15 % (CPU).
 *
 *   node dist/bench/cpp.js [--rounds N] [--before DIR]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(fileURLToPath(import.meta.url), '..', 'measure-demangle.js');
const r = spawnSync(process.execPath, [script, 'daemon', ...process.argv.slice(2), '--results'], { stdio: 'inherit' });
process.exitCode = r.status ?? 1;
