/**
 * Crashes, from the agent's raw record (src/daemon/inputs-log.ts) to a group: the stack resolved
 * with the daemon's own DWARF reader (the symbolizer pool, as for coverage), the agent's own
 * frames dropped, a signature from the kind and the top three project frames (frames in a source
 * file that has instrumented PCs in this target), as ClusterFuzz's crash state does, and the
 * artifact libFuzzer (or afl-fuzz) wrote for it. Used by src/daemon/inputs.ts, which keeps the groups.
 *
 * AFL++ findings (parseAflFileName, aflCrashOf): a file in an instance's crashes/ or hangs/ that no
 * agent record names becomes a record of its own, kind and time from its name, with no stack.
 *
 * Inlined frames are expanded as llvm-symbolizer does: a return address inside inlined code gives
 * one frame per inlined function (`inlined: true`), innermost first, then the function it sits in.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import type { CrashFrame, CrashKind } from '../contracts/inputs.js';
import { sourcePathOf } from '../contracts/paths.js';
import type { SourceIndex, Symbolizer } from '../workers/types.js';
import { NONE } from '../workers/types.js';
import type { ResolvedIndex } from '../dwarf/resolve.js';
import { readBounded, UntrustedFileError } from '../util/untrusted.js';
import type { CrashRecord } from './inputs-log.js';

/** A crash record as stored: the agent's record (inputs-log.ts) with its bigints as hex strings, so msgpack and JSON carry it. */
export type StoredCrash = Omit<CrashRecord, 'bias' | 'lo' | 'hi' | 'frames' | 'exact'> & {
  seq: number;
  bias: string;
  lo: string;
  hi: string;
  frames: string[];
  exact: string;
};

export function toStored(seq: number, r: CrashRecord): StoredCrash {
  const h = (b: bigint) => '0x' + b.toString(16);
  return {
    seq, kind: r.kind, hash: r.hash, size: r.size, flags: r.flags, signo: r.signo, status: r.status, pid: r.pid, time: r.time, run: r.run,
    bias: h(r.bias), lo: h(r.lo), hi: h(r.hi), frames: r.frames.map(h), exact: h(r.exact), detail: r.detail, artifact: r.artifact,
  };
}

/** The agent's own code: its frames sit on top of every stack it records. */
const AGENT_FILES = new Set(['covd_agent.c', 'covd_inputs.c']);
const AGENT_FUNCTIONS = new Set(['crash_record', 'crash_signal', '__wrap__Exit', '__sanitizer_report_error_summary', 'unwind_cb']);

export interface ResolvedStack {
  frames: CrashFrame[];
  resolved: boolean;
}

/**
 * Resolves the stacks of several crashes of one target with one request to the pool.
 * `projectFiles`: normalised paths of the files with instrumented PCs (the coverage index's).
 * A return address is looked up one byte back (the call instruction), the interrupted
 * instruction of a signal frame at itself. Frames outside the executable stay unresolved.
 */
export async function resolveStacks(
  symbolizer: Symbolizer, exe: string, buildId: string | null, crashes: StoredCrash[], projectFiles: Set<string>,
): Promise<ResolvedStack[]> {
  const lookups: bigint[] = [];
  const plan = crashes.map((c) => {
    const bias = BigInt(c.bias), lo = BigInt(c.lo), hi = BigInt(c.hi), exact = BigInt(c.exact);
    return c.frames.map((f, i) => {
      const a = BigInt(f);
      if (lo === 0n || a < lo || a >= hi) return { pc: a, at: -1 };
      const unslid = a - bias;
      const isExact = ((exact >> BigInt(i)) & 1n) === 1n;
      lookups.push(isExact || unslid === 0n ? unslid : unslid - 1n);
      return { pc: unslid, at: lookups.length - 1 };
    });
  });
  let index: SourceIndex | null = null;
  if (lookups.length) {
    try {
      index = await symbolizer.resolve({ exe, pcs: BigUint64Array.from(lookups), inlineFrames: true });
      if (buildId && index.buildId && index.buildId !== buildId) index = null; // rebuilt since: its lines would be wrong
    } catch {
      index = null;
    }
  }
  const chains = (index as ResolvedIndex | null)?.inlineFrames;
  return plan.map((frames, ci) => {
    const out: CrashFrame[] = frames.flatMap(({ pc, at }) => {
      const f: CrashFrame = { pc: '0x' + pc.toString(16), function: null, file: null, line: null, column: null, inlined: false, project: false };
      if (!index || at < 0) return [f];
      if (chains) {
        // Every inlined frame of the return address, innermost first, as llvm-symbolizer shows them.
        const c = chains.of ? chains.of[at]! : at;
        const list: CrashFrame[] = [];
        for (let k = chains.start[c]!, end = chains.start[c + 1]!; k < end; k++) {
          const file = chains.file[k]!, fn = chains.fn[k]!;
          const g: CrashFrame = { ...f, inlined: k < end - 1 };
          if (file !== NONE) {
            g.file = sourcePathOf(index, file) || null;
            g.line = chains.line[k]! || null;
            g.column = chains.column[k]! || null;
          }
          if (fn !== NONE) g.function = index.functions.names[fn] ?? null;
          g.project = g.file !== null && projectFiles.has(g.file);
          list.push(g);
        }
        if (list.length) return list;
      }
      const file = index.pcFile[at]!, fn = index.pcFunction[at]!;
      if (file !== NONE) {
        f.file = sourcePathOf(index, file) || null;
        f.line = index.pcLine[at]! || null;
        f.column = index.pcColumn[at]! || null;
      }
      if (fn !== NONE) f.function = index.functions.names[fn] ?? null;
      f.project = f.file !== null && projectFiles.has(f.file);
      return [f];
    });
    // The agent's own frames (recording, its signal handler, the _Exit wrapper) come first: drop them.
    let start = 0;
    while (start < out.length && isAgentFrame(out[start]!)) start++;
    if (start === out.length) start = 0;
    // A record without a stack (derived from an AFL++ file) has nothing resolved.
    return { frames: out.slice(start), resolved: index !== null && crashes[ci]!.frames.length > 0 };
  });
}

function isAgentFrame(f: CrashFrame): boolean {
  return (f.file !== null && AGENT_FILES.has(basename(f.file))) || (f.function !== null && AGENT_FUNCTIONS.has(f.function));
}

/** The sub-kind in a signature: the signal's name, or a sanitizer's bug type ("heap-buffer-overflow"). */
function subKind(kind: CrashKind, detail: string): string {
  if (kind === 'signal') return detail.split(/\s/)[0] ?? '';
  if (kind === 'sanitizer') {
    const m = /Sanitizer:\s+(\S+)/.exec(detail);
    return m ? m[1]! : '';
  }
  return '';
}

/** "kind[:sub] | f1 | f2 | f3" over the top three project frames (function, else file:line). */
export function signatureOf(kind: CrashKind, detail: string, frames: CrashFrame[]): string {
  const sub = subKind(kind, detail);
  const top = frames.filter((f) => f.project).slice(0, 3).map((f) => f.function ?? `${basename(f.file ?? '??')}:${f.line ?? 0}`);
  return [sub ? `${kind}:${sub}` : kind, ...(top.length ? top : ['(no project frames)'])].join(' | ');
}

export const signatureKey = (sig: string) => createHash('sha1').update(sig).digest('hex').slice(0, 16);

/** libFuzzer's artifact names by kind (DumpCurrentUnit): the prefix, the kind, '-', the input's SHA-1. */
const ARTIFACT_KINDS = ['crash', 'timeout', 'oom', 'leak'] as const;
const ARTIFACT_NAME = /^(crash|timeout|oom|leak)-([0-9a-f]{40})$/;

export type ArtifactResult = { path: string; hash: string; bytes: Buffer } | { path: null; reason: string };

/**
 * Finds the artifact libFuzzer wrote for a crash and reads it, under the untrusted-file rules
 * (regular, this user's, not a symlink, bounded), accepted only when its SHA-1 is the one its name
 * says. For a crash without an input (a leak found after the target returned) the newest
 * `leak-*` in the artifact directory written within a minute of the crash is taken.
 */
export async function readArtifact(c: StoredCrash, maxBytes: number): Promise<ArtifactResult> {
  const a = c.artifact;
  if (!a) return { path: null, reason: 'the agent did not know where libFuzzer writes artifacts' };
  const raw = 'exact' in a ? a.exact : a.prefix + 'x';
  if (!isAbsolute(raw) || normalize(raw) !== raw) return { path: null, reason: 'the artifact path in the crash record is not a plain absolute path' };
  const dir = dirname(raw);
  const candidates: string[] = [];
  if ('exact' in a) candidates.push(a.exact);
  else {
    const base = basename(raw).slice(0, -1);
    if (c.hash) for (const k of ARTIFACT_KINDS) candidates.push(join(dir, `${base}${k}-${c.hash}`));
    else {
      let names: string[] = [];
      try { names = await readdir(dir); } catch { /* gone */ }
      const leaks: { p: string; d: number }[] = [];
      for (const n of names) {
        if (!n.startsWith(base) || !ARTIFACT_NAME.test(n.slice(base.length)) || !n.slice(base.length).startsWith('leak-')) continue;
        try {
          const st = await stat(join(dir, n));
          const d = st.mtimeMs - c.time;
          if (d > -5_000 && d < 60_000) leaks.push({ p: join(dir, n), d: Math.abs(d) });
        } catch { /* raced away */ }
      }
      leaks.sort((x, y) => x.d - y.d);
      if (leaks[0]) candidates.push(leaks[0].p);
    }
  }
  let last = 'libFuzzer wrote no artifact for it (or it was removed)';
  for (const p of candidates) {
    let bytes: Buffer;
    try {
      bytes = await readBounded(p, maxBytes, { noFollow: true, owned: true });
    } catch (err) {
      if (err instanceof UntrustedFileError && err.code !== 'ENOENT') last = err.message;
      continue;
    }
    const hash = createHash('sha1').update(bytes).digest('hex');
    const named = ARTIFACT_NAME.exec(basename(p).slice(basename(raw).length - 1));
    if ('prefix' in a && (!named || named[2] !== hash)) { last = `${p}: its content does not match the SHA-1 in its name`; continue; }
    if (c.hash && hash !== c.hash) { last = `${p}: not the crash's input`; continue; }
    return { path: p, hash, bytes };
  }
  return { path: null, reason: last };
}

/**
 * The fields of an AFL++ crash or hang file name (afl-fuzz's save_if_interesting):
 * `id:000003,sig:11,src:000001,time:1234,execs:5678,op:havoc,rep:4` in crashes/, the same without
 * `sig:` in hangs/; `time` is ms since the instance started, `execs` its executions then.
 * Unknown or missing fields are null.
 */
export function parseAflFileName(name: string): { id: number | null; sig: number | null; time: number | null; execs: number | null } {
  const field = (k: string) => {
    const m = new RegExp(`(?:^|,)${k}:(\\d{1,15})(?:,|$)`).exec(name);
    return m ? Number(m[1]) : null;
  };
  return { id: field('id'), sig: field('sig'), time: field('time'), execs: field('execs') };
}

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS',
};

/**
 * The kind and detail of a record derived from an AFL++ file alone: a hang is a `timeout`
 * ("afl-fuzz: hang"); a crash with a signal is a `signal` named like the agent names it
 * ("SIGSEGV"), so it groups with the same words; `sig:00` is afl-fuzz's AFL_CRASH_EXITCODE
 * (the target exited with that code), an `exit`.
 */
export function aflCrashOf(sub: 'crashes' | 'hangs', sig: number | null): { kind: CrashKind; detail: string; signo: number } {
  if (sub === 'hangs') return { kind: 'timeout', detail: 'afl-fuzz: hang', signo: 0 };
  if (!sig) return { kind: 'exit', detail: 'afl-fuzz: crash exit code (AFL_CRASH_EXITCODE)', signo: 0 };
  return { kind: 'signal', detail: SIGNALS[sig] ?? `signal ${sig}`, signo: sig };
}
