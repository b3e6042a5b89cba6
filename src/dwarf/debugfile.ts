/**
 * Finding the DWARF for an executable: its own sections, an explicit --debug-file, or the
 * separate debug file named by build-id (/usr/lib/debug/.build-id/xx/rest.debug) or by
 * .gnu_debuglink (next to the binary, in .debug/, under /usr/lib/debug/<dir>).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ElfFile } from './elf.js';
import { DebugInfoError } from './errors.js';

export const DEBUG_ROOT = '/usr/lib/debug';

export function hasDwarf(elf: ElfFile): boolean {
  return elf.has('.debug_info') && elf.has('.debug_line');
}

/** Candidate paths for the separate debug file, in lookup order. */
export function debugFileCandidates(exe: string, buildId: string | null, link: string | null, root = DEBUG_ROOT): string[] {
  const out: string[] = [];
  if (buildId && buildId.length > 2) out.push(join(root, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`));
  if (link) {
    const dir = dirname(resolve(exe));
    out.push(join(dir, link), join(dir, '.debug', link), join(root, dir, link));
  }
  return out;
}

/** Opens the file that holds the executable's DWARF (maybe the executable itself). */
export function openDebugInfo(exe: ElfFile, debugFile?: string, root = DEBUG_ROOT): ElfFile {
  if (debugFile) {
    const d = ElfFile.open(debugFile);
    if (!hasDwarf(d)) {
      d.close();
      throw new DebugInfoError('NO_DEBUG_INFO', `${debugFile}: debug file has no ${missing(d)}`);
    }
    return d;
  }
  if (hasDwarf(exe)) return exe;
  const buildId = exe.buildId();
  const link = exe.debugLink();
  const tried: string[] = [];
  for (const c of debugFileCandidates(exe.path, buildId, link?.file ?? null, root)) {
    if (resolve(c) === resolve(exe.path) || !existsSync(c)) { tried.push(c); continue; }
    const d = ElfFile.open(c);
    if (hasDwarf(d)) return d;
    d.close();
    tried.push(c);
  }
  const where = tried.length ? `; no separate debug file found (looked for ${tried.join(', ')})` : '; it has no build-id or .gnu_debuglink to find a separate debug file';
  throw new DebugInfoError('NO_DEBUG_INFO', `${exe.path}: no debug info: the executable has no ${missing(exe)}${where}. Rebuild with -g or pass --debug-file`);
}

function missing(elf: ElfFile): string {
  const m = ['.debug_info', '.debug_line'].filter((n) => !elf.has(n));
  return m.join(' or ') + ' section';
}
