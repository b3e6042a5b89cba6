/**
 * Target ids: a coverage file is named by 16 lower-case hex digits, the agent's hash of its PC
 * table. The pattern and the hash live here only; every layer (the watcher, the control socket,
 * the command line, the tests) imports them.
 */

/** A coverage id: 16 lower-case hex digits. The one definition; everyone else imports it. */
export const COVERAGE_ID = /^[0-9a-f]{16}$/;

export function isCoverageId(s: unknown): s is string {
  return typeof s === 'string' && COVERAGE_ID.test(s);
}

/**
 * What a URL or a command line may name as a target: a coverage id, or any id the registry or
 * the fleet gives (letters, digits, `_`, `-`; at most 64). Checked before any look-up, so an id
 * never reaches a map, a path or a log unbounded.
 */
export const TARGET_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The agent's hash of a PC list (agent/covd_agent.c hash_pcs): FNV-1a over the little-endian
 * bytes, then splitmix64's finaliser; 16 hex digits. The agent names its file by it; the daemon
 * uses it to recognise the PC table it resolved when a file is replaced or a target restored.
 * FNV's 64-bit multiply is done in 32-bit halves: BigInt per byte is 50x slower.
 */
export function pcTableHash(pcs: BigUint64Array): string {
  const bytes = new Uint8Array(pcs.buffer, pcs.byteOffset, pcs.byteLength);
  let lo = 0x84222325, hi = 0xcbf29ce4;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    // (hi:lo) * 0x100000001b3 = (hi:lo) * 0x1b3 + (lo << 40), mod 2^64
    const a = (lo & 0xffff) * 0x1b3;
    const b = (lo >>> 16) * 0x1b3 + (a >>> 16);
    hi = (Math.imul(hi, 0x1b3) + (b >>> 16) + (lo << 8)) >>> 0;
    lo = (((b & 0xffff) << 16) | (a & 0xffff)) >>> 0;
  }
  const M = 0xffff_ffff_ffff_ffffn;
  let h = (BigInt(hi) << 32n) | BigInt(lo);
  h ^= h >> 30n; h = (h * 0xbf58476d1ce4e5b9n) & M;
  h ^= h >> 27n; h = (h * 0x94d049bb133111ebn) & M;
  h ^= h >> 31n;
  return h.toString(16).padStart(16, '0');
}
