import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.js';
import type { DaemonStatus } from '../../daemon/daemon.js';
import { ask } from '../../daemon/cli-common.js';
import { defaultSocketPath } from '../../util/paths.js';
import type { Comparison } from '../../web/compare.js';
import { TARGET_ID } from '../../contracts/ids.js';


/** B as the API spells it: an id, `@<ms>` (an ISO date after `@` is turned into ms), or `prefix:rest`. */
export function compareSpec(b: string): string {
  if (TARGET_ID.test(b)) return b;
  if (b.startsWith('@')) {
    const t = b.slice(1);
    if (/^\d{1,16}$/.test(t)) return b;
    const ms = Date.parse(t);
    if (t !== '' && Number.isFinite(ms) && ms >= 0) return `@${ms}`;
    throw new UsageError(`'${b}' is not a time: use @<ms since the epoch> or @<ISO 8601 date>`);
  }
  const colon = b.indexOf(':');
  if (colon > 0 && /^[a-z][a-z0-9-]{0,31}$/.test(b.slice(0, colon))) return `${b.slice(0, colon)}:${encodeURIComponent(b.slice(colon + 1))}`;
  throw new UsageError(`'${b}' is neither a target id nor @TIME`);
}

const command: Command = {
  summary: 'compare the line coverage of two targets, or of one target now and at a time',
  usage: `usage: covd diff A B [options]

Compares target A's covered lines with B's, matched by source path and line:
  B = another target id     another build of the same program (A and B as they are now)
  B = @TIME                 target A as it was at TIME (ms since the epoch, or an ISO 8601 date):
                            the past is the base, so "only in B" is what was covered since TIME

Prints, per file, the lines covered only in A, only in B, and how many in both.
Exits 1 when A has covered lines B lacks (coverage was lost), 0 when not, 2 on errors.
Talks HTTP to the daemon's web server (its URL from the control socket's status, or --url).

options:
  --format FMT    text (default), json (the API's answer) or lcov (lines only in B, as hit)
  --url URL       the daemon's web server (default: asked from the daemon over --socket)
  --token TOKEN   the daemon's --token, when it has one (COVD_TOKEN)
  --socket PATH   the daemon's control socket (COVD_SOCKET; default $COVD_DIR/covd.sock)`,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options: { format: { type: 'string' }, url: { type: 'string' }, token: { type: 'string' }, socket: { type: 'string' } },
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const [a, b, extra] = parsed.positionals;
    if (a === undefined || b === undefined) throw new UsageError('missing argument: covd diff A B');
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
    if (!TARGET_ID.test(a)) throw new UsageError(`'${a}' is not a target id`);
    const format = parsed.values.format ?? 'text';
    if (format !== 'text' && format !== 'json' && format !== 'lcov') throw new UsageError('--format must be text, json or lcov');
    const spec = compareSpec(b);
    let base = parsed.values.url;
    if (base === undefined) {
      const reply = await ask(parsed.values.socket ?? defaultSocketPath(), { type: 'status' });
      if (!reply) return 2;
      const url = (reply.status as DaemonStatus).url;
      if (!url) {
        console.error('covd: the daemon reports no web server URL; pass --url');
        return 2;
      }
      base = url;
    }
    let target: URL;
    try {
      target = new URL(`api/targets/${a}/compare/${spec}`, base.endsWith('/') ? base : `${base}/`);
    } catch {
      throw new UsageError(`'${base}' is not a URL`);
    }
    // Always the JSON (for the exit code); the lcov as well when asked for.
    const token = parsed.values.token ?? process.env.COVD_TOKEN;
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const get = async (format: string): Promise<{ ok: true; body: string } | { ok: false }> => {
      const u = new URL(target);
      u.searchParams.set('format', format);
      let res: Response;
      try {
        res = await fetch(u, { headers });
      } catch (err) {
        console.error(`covd: cannot reach the daemon's web server at ${base}: ${(err as Error).message}`);
        return { ok: false };
      }
      const body = await res.text();
      if (!res.ok) {
        let msg = body.trim();
        try { msg = (JSON.parse(body) as { error?: string }).error ?? msg; } catch { /* not JSON */ }
        console.error(`covd: the daemon says (HTTP ${res.status}): ${msg}`);
        return { ok: false };
      }
      return { ok: true, body };
    };
    const r = await get('json');
    if (!r.ok) return 2;
    const c = JSON.parse(r.body) as Comparison;
    const lost = c.totals.onlyA > 0 ? 1 : 0;
    if (format === 'json') {
      process.stdout.write(r.body.endsWith('\n') ? r.body : r.body + '\n');
    } else if (format === 'lcov') {
      const l = await get('lcov');
      if (!l.ok) return 2;
      process.stdout.write(l.body);
    } else {
      const ranges = (ls: number[]) => {
        const out: string[] = [];
        for (let i = 0; i < ls.length; i++) {
          let j = i;
          while (j + 1 < ls.length && ls[j + 1] === ls[j]! + 1) j++;
          out.push(j === i ? String(ls[i]) : `${ls[i]}-${ls[j]}`);
          i = j;
        }
        return out.join(',');
      };
      for (const f of c.files) {
        if (f.onlyA.length === 0 && f.onlyB.length === 0) continue;
        console.log(f.path);
        if (f.onlyA.length) console.log(`  only in A (${f.onlyA.length}): ${ranges(f.onlyA)}`);
        if (f.onlyB.length) console.log(`  only in B (${f.onlyB.length}): ${ranges(f.onlyB)}`);
      }
      console.log(`lines: ${c.totals.onlyA} only in A, ${c.totals.onlyB} only in B, ${c.totals.both} in both`);
    }
    return lost;
  },
};

export default command;
