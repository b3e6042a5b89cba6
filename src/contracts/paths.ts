/**
 * Source paths: the one place a DWARF (directory, file) pair becomes a path. The registry, the
 * API, lcov's SF:, /source, the file watcher and the browser all show and match this spelling,
 * so an out-of-tree build (`cd build && cc ../src/a.c`) gives `/p/src/a.c` everywhere.
 * Normalisation is lexical (POSIX rules, no file-system look-up: the build machine's tree may
 * not exist here). `covd symbolize` keeps llvm-symbolizer's unnormalised spelling instead.
 * No Node imports: the browser bundles this.
 */

/** `.` and `..` resolved lexically, duplicate slashes folded; `..` above the root of an absolute path stays at the root. */
export function normalizePath(p: string): string {
  if (p === '') return '';
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(part);
  }
  const body = out.join('/');
  return abs ? `/${body}` : body || '.';
}

/** A directory and a file name from the line table, joined (an absolute name stands alone) and normalised. */
export function joinSourcePath(dir: string, name: string): string {
  if (name.startsWith('/') || dir === '') return normalizePath(name);
  return normalizePath(`${dir}/${name}`);
}

/** The path of file `file` of a source index (directories, files, fileDirs), or '' when out of range. */
export function sourcePathOf(ix: { directories: string[]; files: string[]; fileDirs: ArrayLike<number> }, file: number): string {
  if (!Number.isInteger(file) || file < 0 || file >= ix.files.length) return '';
  return joinSourcePath(ix.directories[ix.fileDirs[file]!] ?? '', ix.files[file]!);
}

/**
 * Where compilers and the system keep headers: code from here (libstdc++'s templates, glibc's
 * inline functions) is "library" code, shown apart from the project's own files.
 */
const SYSTEM_DIRS = [/^\/usr\/include\//, /^\/usr\/local\/include\//, /^\/usr\/lib\/gcc\//, /^\/usr\/lib\/llvm-[^/]+\//, /^\/usr\/lib\/clang\//, /^\/usr\/share\/include\//];

/** True for a normalised path under the system's include directories, or matching any of `exclude`. */
export function isLibraryPath(path: string, exclude: readonly RegExp[] = []): boolean {
  return SYSTEM_DIRS.some((re) => re.test(path)) || exclude.some((re) => re.test(path));
}

/** The deepest directory that holds every one of `paths` (absolute, normalised); '' when none is shared. */
export function commonRoot(paths: readonly string[]): string {
  if (paths.length === 0) return '';
  let root = paths[0]!.slice(0, paths[0]!.lastIndexOf('/') + 1);
  for (const p of paths) {
    while (root && !p.startsWith(root)) root = root.slice(0, root.slice(0, -1).lastIndexOf('/') + 1);
  }
  return root === '/' ? '' : root;
}
