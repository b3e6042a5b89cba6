/**
 * Opening files whose paths come from outside the daemon (coverage directories, metadata, the
 * executables they name): one place for the rules, so no caller forgets one.
 *
 * - Non-blocking open: opening a FIFO for reading would wait for a writer and hang whichever
 *   thread did it; with O_NONBLOCK the open returns at once and fstat tells what it is.
 * - Regular files only, judged on the open descriptor (no check-then-open race).
 * - Optionally no symlink as the last component (O_NOFOLLOW), for `v/` where the agent only
 *   ever writes real files.
 * - Reads bounded by the caller, checked before anything is allocated.
 * - One ownership rule: this user's or root's files.
 * Error messages name the path and the rule, never bytes of the file.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open as openAsync, type FileHandle } from 'node:fs/promises';
import { UntrustedFileError } from '../contracts/errors.js';

export { UntrustedFileError };
export type { FileErrorKind as UntrustedFileCode } from '../contracts/errors.js';

export interface OpenRules {
  /** Refuse a symlink as the last path component (default false). */
  noFollow?: boolean;
  /** Refuse a file owned by anyone but this user or root (default false). */
  owned?: boolean;
}

const myUid = process.geteuid?.() ?? 0;

/** The ownership rule for everything the daemon reads on someone's word: ours or root's. */
export function trustedOwner(uid: number): boolean {
  return uid === myUid || uid === 0;
}

// O_NOCTTY: opening a terminal must not make it ours.
function flags(rules: OpenRules): number {
  return constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (rules.noFollow ? constants.O_NOFOLLOW : 0);
}

/** What a file is, in words for an error ("a FIFO", "a device", ...). */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'no regular file';
}

function openError(path: string, err: unknown, rules: OpenRules): UntrustedFileError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return new UntrustedFileError('ENOENT', path, 'does not exist', code);
  if (code === 'ELOOP' && rules.noFollow) return new UntrustedFileError('SYMLINK', path, 'is a symbolic link, which is not followed here', code);
  return new UntrustedFileError('IO', path, `cannot open (${code ?? (err as Error)?.message})`, code);
}

function checkStat(path: string, st: Stats, rules: OpenRules): void {
  if (!st.isFile()) throw new UntrustedFileError('NOT_REGULAR', path, `is ${fileKind(st)}; only regular files are read`, undefined, fileKind(st));
  if (rules.owned && !trustedOwner(st.uid)) throw new UntrustedFileError('OWNER', path, `is owned by uid ${st.uid}, neither this user nor root`);
}

/** Opens a regular file under the rules; the caller closes the descriptor. */
export function openRegularSync(path: string, rules: OpenRules = {}): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(path, flags(rules));
  } catch (err) {
    throw openError(path, err, rules);
  }
  try {
    const st = fstatSync(fd);
    checkStat(path, st, rules);
    return { fd, st };
  } catch (err) {
    closeSync(fd);
    if (err instanceof UntrustedFileError) throw err;
    throw new UntrustedFileError('IO', path, `cannot stat (${(err as Error).message})`);
  }
}

/** The async twin of openRegularSync: the main thread never waits on an untrusted path. */
export async function openRegular(path: string, rules: OpenRules = {}): Promise<{ fh: FileHandle; st: Stats }> {
  let fh: FileHandle;
  try {
    fh = await openAsync(path, flags(rules));
  } catch (err) {
    throw openError(path, err, rules);
  }
  try {
    const st = await fh.stat();
    checkStat(path, st, rules);
    return { fh, st };
  } catch (err) {
    await fh.close().catch(() => {});
    if (err instanceof UntrustedFileError) throw err;
    throw new UntrustedFileError('IO', path, `cannot stat (${(err as Error).message})`);
  }
}

function tooLarge(path: string, size: number, max: number): UntrustedFileError {
  return new UntrustedFileError('TOO_LARGE', path, `${size} bytes is over the ${max}-byte limit for this file`);
}

/** Reads a whole regular file of at most `max` bytes (a file growing past it while read is refused too). */
export function readBoundedSync(path: string, max: number, rules: OpenRules = {}): Buffer {
  const { fd, st } = openRegularSync(path, rules);
  try {
    if (st.size > max) throw tooLarge(path, st.size, max);
    const buf = Buffer.allocUnsafe(max + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
      if (got > max) throw tooLarge(path, got, max);
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The async twin of readBoundedSync. */
export async function readBounded(path: string, max: number, rules: OpenRules = {}): Promise<Buffer> {
  const { fh, st } = await openRegular(path, rules);
  try {
    if (st.size > max) throw tooLarge(path, st.size, max);
    const buf = Buffer.allocUnsafe(max + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got > max) throw tooLarge(path, got, max);
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close().catch(() => {});
  }
}
