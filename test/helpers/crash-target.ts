/**
 * The crashing example (examples/magicbug: a NULL store behind the magic "FUZZ" and a kind byte
 * with both low bits set), built with the agent like the other examples, and where its bug is.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFuzzTarget } from '../../src/build/targets.js';
import { packageRoot } from '../../src/build/toolchain.js';

export const magicbugDir = () => join(packageRoot(), 'examples', 'magicbug');

export function buildMagicbugTarget(opts: { cflags?: string[]; agent?: boolean } = {}): Promise<string> {
  const d = magicbugDir();
  return buildFuzzTarget({ name: 'fuzz_magicbug', sources: [join(d, 'fuzz_magicbug.c'), join(d, 'magicbug.c')], ...opts });
}

/** The file and line of the deliberate bug (the line marked "the bug"). */
export function magicbugCrashLine(): { file: string; line: number } {
  const file = join(magicbugDir(), 'magicbug.c');
  const line = readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes('the bug')) + 1;
  return { file, line };
}
