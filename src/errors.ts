// Every expected failure in estca is one of these kinds. The core throws them; the edges
// (HTTP in est/ and admin/, the CLI) map a kind to a status or an exit message in one place.
export type ErrorKind =
  | "bad_request" // malformed input: 400
  | "unauthorized" // missing or invalid credentials: 401
  | "forbidden" // valid credentials, no permission: 403
  | "not_found" // unknown label, serial, operation: 404
  | "method_not_allowed" // 405
  | "conflict" // revoking twice, user exists: 409
  | "too_large" // 413
  | "unsupported_media_type" // 415
  | "throttled" // 429
  | "unavailable" // token or database gone: 503
  | "config" // invalid configuration or data directory (CLI only)
  | "internal";

export class EstcaError extends Error {
  readonly kind: ErrorKind;
  /** Seconds a client should wait before trying again (429, 503). */
  readonly retryAfter?: number;
  /** Whom to challenge for credentials on a 401. */
  readonly challenge?: string;

  constructor(kind: ErrorKind, message: string, opts: { retryAfter?: number; challenge?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "EstcaError";
    this.kind = kind;
    this.retryAfter = opts.retryAfter;
    this.challenge = opts.challenge;
  }
}

export const badRequest = (msg: string) => new EstcaError("bad_request", msg);
export const unauthorized = (msg: string) => new EstcaError("unauthorized", msg);
export const forbidden = (msg: string) => new EstcaError("forbidden", msg);
export const notFound = (msg: string) => new EstcaError("not_found", msg);
export const conflict = (msg: string) => new EstcaError("conflict", msg);
export const unavailable = (msg: string, retryAfter = 30) => new EstcaError("unavailable", msg, { retryAfter });
export const configError = (msg: string) => new EstcaError("config", msg);

export function isEstcaError(e: unknown): e is EstcaError {
  return e instanceof EstcaError;
}

/** The message of any thrown value, for logs and reasons. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
