/**
 * Typed errors. Every error ferry raises on purpose is a FerryError with a stable `code` and a message that says
 * what is wrong and, where it can, what to do ("input s3://b/x.csv line 1042: column 'profile_id' is empty").
 *
 * The `name` of each class is what Step Functions matches in Retry/Catch `ErrorEquals`, so retryable failures
 * (TransientError) and permanent ones (everything else) can be told apart by the state machine.
 */
export type ErrorCode =
  | "INPUT" // bad user data: a record, a line, a field
  | "CONFIG" // bad request/configuration (dataset config, CLI options)
  | "VALIDATION" // an invariant check failed (counts, ranges, checksums)
  | "CORRUPTION" // bytes on disk/S3 are not what they claim to be
  | "NOT_FOUND"
  | "CONFLICT" // a conditional write lost: someone else got there first
  | "LIMIT" // a configured limit was exceeded
  | "TRANSIENT" // worth retrying
  | "ENVIRONMENT"; // the machine lacks something (a library, an emulator died)

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
    this.name = new.target.name;
  }
}

/** Bad input data. Name the source (file/object), and the line/row/field/key where known. */
export class InputError extends FerryError {
  constructor(
    message: string,
    details: { source?: string; line?: number; field?: string; key?: string } & Record<string, unknown> = {},
  ) {
    super("INPUT", message, details);
  }
}

export class ConfigError extends FerryError {
  constructor(message: string, details: { field?: string } & Record<string, unknown> = {}) {
    super("CONFIG", message, details);
  }
}

export class ValidationError extends FerryError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("VALIDATION", message, details);
  }
}

export class CorruptionError extends FerryError {
  constructor(
    message: string,
    details: { file?: string; offset?: number; expected?: string; actual?: string } & Record<string, unknown> = {},
  ) {
    super("CORRUPTION", message, details);
  }
}

export class NotFoundError extends FerryError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("NOT_FOUND", message, details);
  }
}

export class ConflictError extends FerryError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("CONFLICT", message, details);
  }
}

export class LimitError extends FerryError {
  constructor(
    message: string,
    details: { limit?: string; max?: number; actual?: number } & Record<string, unknown> = {},
  ) {
    super("LIMIT", message, details);
  }
}

/** A failure that may succeed when tried again (throttling, a dropped connection, an emulator restart). */
export class TransientError extends FerryError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super("TRANSIENT", message, details, options);
  }
}

export class EnvironmentError extends FerryError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("ENVIRONMENT", message, details);
  }
}

export function isFerryError(e: unknown): e is FerryError {
  return e instanceof FerryError;
}
