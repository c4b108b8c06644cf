/**
 * Mapping AWS SDK errors to ferry's typed errors: retry-worthy ones (throttling, 5xx, dropped connections) become
 * TransientError (the state machine retries it), missing things NotFoundError, lost conditional writes ConflictError.
 */
import { ConflictError, FerryError, NotFoundError, TransientError } from "../errors.js";

const TRANSIENT_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "LimitExceededException",
  "SlowDown",
  "InternalError",
  "InternalServerError",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "TransactionInProgressException",
  "ConditionalRequestConflict",
]);

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
  // a garbled response (core/aws/lean-http.ts) or a TLS protocol error: worth another connection
  "EPROTO",
]);

const NOT_FOUND_NAMES = new Set([
  "NoSuchKey",
  "NotFound",
  "NoSuchBucket",
  "NoSuchUpload",
  "ResourceNotFoundException",
  "QueueDoesNotExist",
  "AWS.SimpleQueueService.NonExistentQueue",
]);

interface SdkLikeError {
  name?: string;
  code?: string;
  Code?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

function statusOf(err: SdkLikeError): number | undefined {
  return err.$metadata?.httpStatusCode;
}

/** Would trying the same call again plausibly succeed? */
export function isTransientAwsError(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  if (err instanceof TransientError) return true;
  if (err instanceof FerryError) return false;
  const e = err as SdkLikeError;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.Code && TRANSIENT_NAMES.has(e.Code)) return true;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  if (e.$retryable) return true;
  const status = statusOf(e);
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (e.cause && e.cause !== err) return isTransientAwsError(e.cause);
  return false;
}

export function isNotFoundAwsError(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as SdkLikeError;
  return Boolean(
    (e.name && NOT_FOUND_NAMES.has(e.name)) || (e.Code && NOT_FOUND_NAMES.has(e.Code)) || statusOf(e) === 404,
  );
}

export function isConditionFailedAwsError(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as SdkLikeError;
  return e.name === "ConditionalCheckFailedException" || e.name === "PreconditionFailed" || statusOf(e) === 412;
}

/**
 * The typed error for an SDK failure of `what` (e.g. "GetObject s3://b/k"): TransientError, NotFoundError or
 * ConflictError; anything else (bad request, access denied) is returned unchanged. FerryErrors pass through.
 */
export function toFerryError(err: unknown, what: string): unknown {
  if (err instanceof FerryError) return err;
  const e = err as SdkLikeError & { message?: string };
  const msg = `${what}: ${e?.name ?? "Error"}${e?.message ? `: ${e.message}` : ""}`;
  const details = { operation: what, awsError: e?.name, status: e ? statusOf(e) : undefined };
  if (isConditionFailedAwsError(err)) return new ConflictError(msg, details);
  if (isNotFoundAwsError(err)) return new NotFoundError(msg, details);
  if (isTransientAwsError(err)) return new TransientError(msg, details, { cause: err });
  return err;
}

/** Runs one SDK call, throwing typed errors (see toFerryError). */
export async function awsCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFerryError(err, what);
  }
}

/**
 * Retries `fn` on transient errors with exponential backoff and jitter (on top of the SDK's own retries: this also
 * covers a connection dropped while a response body streams, which the SDK does not retry).
 */
export async function withRetries<T>(
  what: string,
  fn: (attempt: number) => Promise<T>,
  opts: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 100;
  const max = opts.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const typed = toFerryError(err, what);
      if (attempt >= attempts || !(typed instanceof TransientError)) throw typed;
      const delay = Math.min(max, base * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
    }
  }
}
