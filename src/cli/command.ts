/** A covd subcommand. Each lives in its own module under src/cli/commands and is loaded lazily. */
export interface Command {
  /** One line for `covd --help`. */
  summary: string;
  /** Full usage text for `covd <name> --help`. */
  usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

export { UsageError, ConfigError } from '../contracts/errors.js';
