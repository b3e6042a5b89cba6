/** Flags every benchmark of bench/ understands, and the "am I the entry point" check. */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export interface BenchFlags {
  /** Shorter runs (fewer trials, smaller sizes) for a quick look or CI; also COVD_BENCH_QUICK=1. */
  quick: boolean;
  /** Soak length in seconds, where it applies. */
  seconds?: number;
}

export function benchFlags(argv = process.argv.slice(2)): BenchFlags {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, seconds: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: false });
  return {
    quick: values.quick === true || process.env.COVD_BENCH_QUICK === '1',
    seconds: typeof values.seconds === 'string' ? Number(values.seconds) : undefined,
  };
}

/** True when the module at `metaUrl` is the script node was started with. */
export function isMain(metaUrl: string): boolean {
  return !!process.argv[1] && resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

export const fmtMs = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : 'n/a');
export const fmtMiB = (bytes: number) => (Number.isFinite(bytes) ? (bytes / (1024 * 1024)).toFixed(1) : 'n/a');
