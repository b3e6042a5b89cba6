/** A covd subcommand. Each lives in its own module under src/cli/commands and is loaded lazily. */
export interface Command {
  /** One line for `covd --help`. */
  summary: string;
  /** Full usage text for `covd <name> --help`. */
  usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** Thrown for bad command-line usage; main() prints the message and the command's usage, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
