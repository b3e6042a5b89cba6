/** Helpers for the typed errors of the debug-info reader (the class itself is part of the pool contract). */
import { DebugInfoError } from '../contracts/errors.js';

export { DebugInfoError };

/** A malformed-input error that says which section and offset the reader was at. */
export function corrupt(where: string, what: string): DebugInfoError {
  return new DebugInfoError('CORRUPT', `${what} (${where})`);
}
