/**
 * Opening a source file for /api/targets/<id>/source. The path is whatever the target's debug
 * info names, and any local user can build a target, so it is untrusted:
 *
 * - regular files only, judged on the open descriptor; the open is non-blocking, so a FIFO
 *   returns at once instead of waiting for a writer and stalling the event loop;
 * - the file's real path must lie under the real path of its own directory (the dirname of the
 *   path the debug info names): a symlink `src/a.c -> /etc/passwd` is refused, one within the
 *   tree is fine;
 * - reads are bounded, and all I/O is asynchronous.
 *
 * Refusals name the reason, never bytes of the file.
 */
import type { Stats } from 'node:fs';
import { readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { fileKind, openRegular, UntrustedFileError } from '../util/untrusted.js';
import { dirname, sep } from 'node:path';

/** A refusal with the HTTP status to answer it with. */
export class SourceRefused extends Error {
  override name = 'SourceRefused';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const notRegular = (st: Stats) => new SourceRefused(404, `is ${fileKind(st)}, not a regular file`);

/** Opens `path` without blocking and keeps the descriptor only if it is a regular file (the rules of util/untrusted.ts). */
export async function openRegularNonBlocking(path: string): Promise<{ fh: FileHandle; st: Stats }> {
  try {
    return await openRegular(path);
  } catch (err) {
    if (!(err instanceof UntrustedFileError)) throw err;
    if (err.kind === 'NOT_REGULAR') throw new SourceRefused(404, `is ${err.fileKind}, not a regular file`);
    // The route answers by errno (gone, unreadable, a loop of links).
    throw Object.assign(new Error(err.message), { code: err.errno });
  }
}

/** The path the kernel has for an open descriptor (no second lookup by name to race with); realpath elsewhere. */
async function realPathOf(fh: FileHandle, path: string): Promise<string> {
  try {
    const p = await readlink(`/proc/self/fd/${fh.fd}`);
    if (p.startsWith('/')) return p;
  } catch {
    // no /proc
  }
  return realpath(path);
}

/**
 * Opens the source file at `path` (absolute, from Hub.sourcePath) under the rules above; the
 * caller closes `fh`. Throws SourceRefused, or the errno error of a failed open (ENOENT, ...).
 */
export async function openSource(path: string): Promise<{ fh: FileHandle; st: Stats }> {
  // Opening a device can have effects of its own (a tape rewinds, a serial line hangs up): what
  // stat already shows is not a file is never opened. The descriptor is still checked below.
  const pre = await stat(path);
  if (!pre.isFile()) throw notRegular(pre);
  const realDir = await realpath(dirname(path));
  const { fh, st } = await openRegularNonBlocking(path);
  try {
    const real = await realPathOf(fh, path);
    const prefix = realDir.endsWith(sep) ? realDir : realDir + sep;
    if (!real.startsWith(prefix)) throw new SourceRefused(403, 'is a symbolic link that leaves the directory the debug info names');
    return { fh, st };
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
}

/** Reads the whole file, or null once it proves longer than `max` bytes (it may grow after fstat). */
export async function readAtMost(fh: FileHandle, size: number, max: number): Promise<Buffer | null> {
  let buf = Buffer.allocUnsafe(Math.min(size, max) + 1);
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      if (n > max) return null;
      const bigger = Buffer.allocUnsafe(Math.min(n * 2, max + 1));
      buf.copy(bigger, 0, 0, n);
      buf = bigger;
    }
    const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n > max ? null : buf.subarray(0, n);
}
