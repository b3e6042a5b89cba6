/**
 * covd's errors: one base, CovdError, with a stable `code` (`COVD_ERR_*`) per failure, and one
 * subclass per family. Code that decides what to do with an error switches on `code` (or on a
 * family's `kind`, the short name its code ends with); messages are for people and may change.
 * Every error that crosses a module boundary is one of these. The codes a client can see (in
 * a target's `errorCode`, a control-socket reply's `code`) are listed in docs/protocol.md.
 *
 * A neutral module: every layer imports it, it imports nothing.
 */

export class CovdError extends Error {
  override name = 'CovdError';
  constructor(readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Why a coverage file cannot be read (docs/coverage-file.md). */
export type CoverageErrorKind =
  | 'ENOENT'      // the file does not exist (yet, or any more)
  | 'EMPTY'       // zero bytes: still being created
  | 'SHORT'       // shorter than its header says: still being written, or truncated
  | 'BAD_SIZE'    // size matches no layout for this pcs_len
  | 'BAD_PCS_LEN' // pcs_len is zero, absurd or over the memory budget
  | 'REPLACED'    // the path now names a different file (inode changed) or pcs_len changed
  | 'PCS_CHANGED' // the file now holds another PC table than the one its target was resolved for
  | 'IO';         // any other I/O error, and files that are not regular files

export class CoverageFileError extends CovdError {
  override name = 'CoverageFileError';
  constructor(
    readonly kind: CoverageErrorKind,
    message: string,
    /** true when waiting and opening again may succeed (EMPTY, SHORT while being created, ENOENT). */
    readonly retryable: boolean,
  ) {
    super(`COVD_ERR_COVERAGE_${kind}`, message);
  }
}

/** A metadata file (`v/<id>.meta.json`) that exists but is not valid. */
export class CoverageMetaError extends CovdError {
  override name = 'CoverageMetaError';
  constructor(readonly path: string, message: string) {
    super('COVD_ERR_COVERAGE_META', `${path}: ${message}`);
  }
}

export type DebugInfoErrorKind =
  | 'ENOENT'          // the executable (or debug file) is missing
  | 'NOT_ELF'         // not an ELF64 little-endian file
  | 'NO_DEBUG_INFO'   // no .debug_info / .debug_line, and no separate debug file found
  | 'CORRUPT'         // malformed DWARF or ELF (message says where)
  | 'UNSUPPORTED'     // e.g. an unknown compression type
  | 'NOT_REGULAR'     // a FIFO, device or directory where an executable should be
  | 'TIMEOUT'         // the pool's per-request deadline passed
  | 'INTERNAL';       // a reader bug on odd input (the message has the stack)

/** The executable's debug info cannot be used. Crosses the pool's thread boundary by kind. */
export class DebugInfoError extends CovdError {
  override name = 'DebugInfoError';
  constructor(readonly kind: DebugInfoErrorKind, message: string) {
    super(`COVD_ERR_DEBUG_INFO_${kind}`, message);
  }
}

export type FileErrorKind = 'ENOENT' | 'NOT_REGULAR' | 'SYMLINK' | 'TOO_LARGE' | 'OWNER' | 'IO';

/** A file named from outside broke a rule of src/util/untrusted.ts. */
export class UntrustedFileError extends CovdError {
  override name = 'UntrustedFileError';
  constructor(
    readonly kind: FileErrorKind,
    readonly path: string,
    message: string,
    /** The errno code behind an ENOENT, SYMLINK or IO refusal. */
    readonly errno?: string,
    /** For NOT_REGULAR: what the file is instead (fileKind). */
    readonly fileKind?: string,
  ) {
    super(`COVD_ERR_FILE_${kind}`, `${path}: ${message}`);
  }
}

/** Bad command-line usage: main() prints the message and the command's usage, exit 2. */
export class UsageError extends CovdError {
  override name = 'UsageError';
  constructor(message: string, code = 'COVD_ERR_USAGE') {
    super(code, message);
  }
}

/** A setting (flag, environment variable or config file key) that is not valid; also exit 2. */
export class ConfigError extends UsageError {
  override name = 'ConfigError';
  constructor(message: string) {
    super(message, 'COVD_ERR_CONFIG');
  }
}

/** A peer broke the control-socket or WebSocket protocol (a frame too large, undecodable). */
export class ProtocolError extends CovdError {
  override name = 'ProtocolError';
  constructor(message: string, code = 'COVD_ERR_PROTOCOL') {
    super(code, message);
  }
}

/** No daemon answers on the control socket, or it hung up without a reply. */
export class DaemonUnreachableError extends CovdError {
  override name = 'DaemonUnreachableError';
  constructor(message: string, code = 'COVD_ERR_DAEMON_UNREACHABLE') {
    super(code, message);
  }
}

/** The daemon cannot start a part it needs (the socket is taken, a listener is refused). */
export class StartupError extends CovdError {
  override name = 'StartupError';
  constructor(message: string, code = 'COVD_ERR_STARTUP') {
    super(code, message);
  }
}

/** The state store could not be opened or a record could not be read. */
export class StoreError extends CovdError {
  override name = 'StoreError';
  constructor(message: string, options?: ErrorOptions) {
    super('COVD_ERR_STORE', message, options);
  }
}

/** The code of any error, for logs and replies: a CovdError's own, else COVD_ERR_INTERNAL. */
export function codeOf(err: unknown): string {
  return err instanceof CovdError ? err.code : 'COVD_ERR_INTERNAL';
}
