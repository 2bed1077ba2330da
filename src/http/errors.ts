import type { Context, Next } from "koa";
import { type ErrorKind, EstcaError, messageOf } from "../errors.ts";

/** The one table that turns a core error kind into an HTTP status. */
export const STATUS_OF: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  throttled: 429,
  unavailable: 503,
  config: 500,
  internal: 500,
};

export interface HttpFailure {
  status: number;
  reason: string;
  headers: Record<string, string>;
}

/** Classifies anything thrown while serving a request. Unknown errors are 500 with no detail leaked. */
export function toHttpFailure(e: unknown): HttpFailure {
  if (e instanceof EstcaError) {
    const headers: Record<string, string> = {};
    if (e.kind === "unauthorized" && e.challenge) headers["WWW-Authenticate"] = e.challenge;
    if (e.retryAfter !== undefined && (e.kind === "throttled" || e.kind === "unavailable")) headers["Retry-After"] = String(e.retryAfter);
    return { status: STATUS_OF[e.kind], reason: e.message, headers };
  }
  // Errors raised by koa or raw-body carry their own status (413 from a size limit, 400 on an aborted body).
  const status = (e as { status?: number; statusCode?: number }).status ?? (e as { statusCode?: number }).statusCode;
  const type = (e as { type?: string }).type;
  if (type === "entity.too.large") return { status: 413, reason: `request body is larger than the limit of ${(e as { limit?: number }).limit} bytes`, headers: {} };
  if (typeof status === "number" && status >= 400 && status < 500) return { status, reason: messageOf(e), headers: {} };
  return { status: 500, reason: "internal error; see the server log", headers: {} };
}

/** Sends a failure as RFC 7030 4.2.3 asks: the status and a short text/plain reason. */
export function sendFailure(ctx: Context, f: HttpFailure): void {
  ctx.status = f.status;
  for (const [k, v] of Object.entries(f.headers)) ctx.set(k, v);
  ctx.set("Content-Type", "text/plain; charset=utf-8");
  ctx.body = Buffer.from(f.reason + "\n", "utf8");
}

/** Koa middleware: every error below it becomes a text/plain answer, and ctx.state.failure records it. */
export function textErrors(onInternal: (e: unknown, ctx: Context) => void) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (e) {
      const f = toHttpFailure(e);
      if (f.status >= 500 && !(e instanceof EstcaError && e.kind === "unavailable")) onInternal(e, ctx);
      ctx.state.failure = f;
      sendFailure(ctx, f);
    }
  };
}
