/**
 * Loads uWebSockets.js and refuses to run on its fallback.
 *
 * The package we depend on silently swaps in a slow Node implementation built on `ws` when its
 * native binary does not load (unsupported Node ABI or platform), or when UWS_USE_FALLBACK is set.
 * covd's fan-out design (one publish reaching every tab from C++) only holds on the native
 * binary, so a server on the shim would look fine in testing and fall over under load. We detect
 * the shim and fail at start-up with a message saying what to do.
 */
import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';

export type Uws = typeof UwsTypes;

export class UwsUnavailableError extends Error {
  override name = 'UwsUnavailableError';
  constructor(message: string, readonly reason: 'fallback' | 'load-failed') {
    super(message);
  }
}

/**
 * The native addon exports functions the shim does not have (getParts, H3App, the shared-memory
 * helpers), and its App is a native class named 'uWS.App'. Either difference alone identifies the shim.
 */
export function isNativeUws(mod: unknown): boolean {
  const m = mod as Record<string, unknown>;
  if (typeof m.App !== 'function') return false;
  if (typeof m.getParts !== 'function' || typeof m.H3App !== 'function') return false;
  const proto = Object.getPrototypeOf((m.App as () => object)()) as { constructor?: { name?: string } } | null;
  return proto?.constructor?.name === 'uWS.App';
}

/**
 * Node major versions the uWebSockets.js build we depend on (v20.30) ships binaries for. Newer
 * uWS builds need glibc 2.38, which Debian 12 lacks; docs/architecture.md says what moving on takes.
 */
export const SUPPORTED_NODE_MAJORS = [16, 18, 20] as const;

/** Why this Node cannot run the server, or undefined when it can. */
export function unsupportedNode(version = process.versions.node): string | undefined {
  const major = Number(version.split('.')[0]);
  if ((SUPPORTED_NODE_MAJORS as readonly number[]).includes(major)) return undefined;
  return `covd's web server needs Node ${SUPPORTED_NODE_MAJORS.join(', ')} (the uWebSockets.js v20.30 build it uses ships ` +
    `native binaries for those only); this is Node ${version}. Run covd with Node 20 (e.g. Debian 12's nodejs 20 packages or nvm)`;
}

let cached: Uws | undefined;

/** Returns the native uWebSockets.js module or throws UwsUnavailableError. */
export function loadUws(): Uws {
  if (cached) return cached;
  const old = unsupportedNode();
  if (old) throw new UwsUnavailableError(old, 'load-failed');
  const require = createRequire(import.meta.url);
  const forced = /^(1|true)$/i.test(process.env.UWS_USE_FALLBACK ?? '');
  let mod: unknown;
  // The package prints its own warning through console when it falls back; we replace that with
  // our error, so silence it for the duration of the require.
  const { log, warn } = console;
  console.log = console.warn = () => {};
  try {
    mod = require('uWebSockets.js');
  } catch (err) {
    throw new UwsUnavailableError(`cannot load uWebSockets.js: ${(err as Error).message}`, 'load-failed');
  } finally {
    console.log = log;
    console.warn = warn;
  }
  if (!isNativeUws(mod)) {
    const why = forced
      ? 'UWS_USE_FALLBACK is set in the environment; unset it'
      : `its native binary did not load for Node ${process.version} (ABI ${process.versions.modules}, ${process.platform}-${process.arch}); ` +
        'install a uWebSockets.js release built for this Node version';
    throw new UwsUnavailableError(
      `uWebSockets.js is running its slow ws-based fallback instead of the native server: ${why}. ` +
        'covd refuses to serve on the fallback because it cannot sustain many tabs.',
      'fallback',
    );
  }
  cached = mod as Uws;
  return cached;
}
