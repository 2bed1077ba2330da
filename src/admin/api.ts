import { randomUUID } from "node:crypto";
import Router from "@koa/router";
import type { Context, Next } from "koa";
import getRawBody from "raw-body";
import { REVOCATION_REASONS, normalizeSerial, revokeCertificate } from "../ca/revocation.ts";
import { EstcaError, badRequest, conflict, forbidden, notFound } from "../errors.ts";
import { toHttpFailure } from "../http/errors.ts";
import { decideEnrollment } from "../ra/approvals.ts";
import { generatePassword, hashPassword, verifyPassword } from "../ra/passwords.ts";
import type { Services } from "../server/services.ts";
import { type CertQuery, SUBSTRING_SEARCH_MIN } from "../store/index.ts";
import { LoginThrottle } from "./login-throttle.ts";
import { type Session, SessionStore, csrfMatches } from "./sessions.ts";
import { certDetail, certSummary, dashboard, enrollmentView, requestView, userView } from "./views.ts";

export const SESSION_COOKIE = "__Host-estca_session";
export const CSRF_HEADER = "x-csrf-token";

// A 401 for the API carries no WWW-Authenticate: a Basic challenge would make the browser pop up
// its own password dialog, and HTTP Basic is not how administrators sign in.
const notSignedIn = () => new EstcaError("unauthorized", "not signed in: POST /api/login first, then send the session cookie");

const USER_NAME = /^[A-Za-z0-9._@-]{1,64}$/;
const BODY_LIMIT = 64 * 1024;

/** A hash to verify against when the user does not exist, so a wrong name costs as long as a wrong password. */
let dummyHash: string | null = null;

async function readJson(ctx: Context): Promise<Record<string, unknown>> {
  if (!ctx.is("application/json")) throw new EstcaError("unsupported_media_type", "send the request body as Content-Type: application/json");
  const text = await getRawBody(ctx.req, { limit: BODY_LIMIT, encoding: "utf8", length: ctx.get("Content-Length") || undefined });
  let v: unknown;
  try {
    v = JSON.parse(text || "{}");
  } catch (e) {
    throw badRequest(`request body is not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw badRequest("request body must be a JSON object");
  return v as Record<string, unknown>;
}

function str(body: Record<string, unknown>, key: string, opts: { required?: boolean; max?: number } = {}): string {
  const v = body[key];
  if (v === undefined || v === null || v === "") {
    if (opts.required) throw badRequest(`"${key}" is required`);
    return "";
  }
  if (typeof v !== "string") throw badRequest(`"${key}" must be a string`);
  if (v.length > (opts.max ?? 1000)) throw badRequest(`"${key}" is longer than ${opts.max ?? 1000} characters`);
  return v;
}

function intParam(ctx: Context, key: string, def: number, min: number, max: number): number {
  const raw = ctx.query[key];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (typeof raw !== "string" || !Number.isInteger(n) || n < min || n > max) throw badRequest(`query parameter ${key} must be a whole number from ${min} to ${max}`);
  return n;
}

function enumParam<T extends string>(ctx: Context, key: string, allowed: readonly T[]): T | undefined {
  const raw = ctx.query[key];
  if (raw === undefined || raw === "") return undefined;
  if (typeof raw !== "string" || !(allowed as readonly string[]).includes(raw)) throw badRequest(`query parameter ${key} must be one of ${allowed.join(", ")}`);
  return raw as T;
}

/** The https origin the administrator reached us at, for URLs and command lines shown in the UI. */
function originOf(ctx: Context, s: Services): string {
  return /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(ctx.host) ? `https://${ctx.host}` : s.estOrigin;
}

/**
 * The JSON API behind the web UI, under /api/. Sign-in is a session cookie (HttpOnly,
 * SameSite=Strict, Secure); every state-changing call also needs the session's CSRF token in
 * X-CSRF-Token and a JSON body, which a cross-site form cannot send.
 */
export function adminApi(s: Services): (ctx: Context, next: Next) => Promise<void> {
  const sessions = new SessionStore(s.store, s.config.admin.sessionMinutes * 60_000);
  const throttle = new LoginThrottle(s.store);
  const r = new Router({ prefix: "/api" });

  // Request id, access log, JSON errors and no caching, for everything under /api.
  const frame = async (ctx: Context, next: Next) => {
    const reqId = randomUUID();
    const started = performance.now();
    ctx.state.reqId = reqId;
    ctx.set("X-Request-Id", reqId);
    ctx.set("Cache-Control", "no-store");
    ctx.set("X-Content-Type-Options", "nosniff");
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw notFound(`no API endpoint ${ctx.method} ${ctx.path}`);
    } catch (e) {
      const f = toHttpFailure(e);
      if (f.status >= 500) s.log.error({ reqId, err: e, path: ctx.path }, "admin API request failed");
      ctx.status = f.status;
      for (const [k, v] of Object.entries(f.headers)) ctx.set(k, v);
      ctx.body = { error: f.reason };
    }
    const session = ctx.state.session as Session | undefined;
    // The UI polls (the request inspector every 2 s): successful reads only at debug level.
    const level = ctx.method === "GET" && ctx.status < 400 ? "debug" : "info";
    s.log[level]({ reqId, method: ctx.method, path: ctx.path, status: ctx.status, user: session?.user, client: ctx.request.ip, ms: Math.round((performance.now() - started) * 100) / 100 }, "admin request");
  };

  // Everything but signing in needs a session; state changes also need its CSRF token.
  const guard = async (ctx: Context, next: Next) => {
    if (ctx.path === "/api/login") return next();
    const session = sessions.get(ctx.cookies.get(SESSION_COOKIE));
    if (!session) throw notSignedIn();
    // An administrator removed with the CLI loses their open sessions at once.
    if (!s.store.users.get(session.user, "admin")) {
      sessions.destroyUser(session.user);
      throw notSignedIn();
    }
    ctx.state.session = session;
    if (!["GET", "HEAD"].includes(ctx.method)) {
      if (!csrfMatches(session, ctx.get(CSRF_HEADER))) throw forbidden(`missing or wrong ${CSRF_HEADER} header: send the token that /api/session returned`);
    }
    return next();
  };

  r.post("/login", async (ctx) => {
    const body = await readJson(ctx);
    const username = str(body, "username", { required: true, max: 64 });
    const password = str(body, "password", { required: true, max: 1024 });
    const addr = ctx.request.ip || "unknown";
    const wait = throttle.retryAfter(username, addr);
    if (wait > 0) {
      s.metrics?.adminLogins.inc({ result: "throttled" });
      s.log.warn({ reqId: ctx.state.reqId, user: username, client: addr, retryAfter: wait }, "admin login throttled");
      throw new EstcaError("throttled", `too many failed sign-ins; try again in ${wait} s`, { retryAfter: wait });
    }
    const rec = s.store.users.get(username, "admin");
    dummyHash ??= hashPassword("not a password of anyone");
    const ok = await verifyPassword(password, rec?.passwordHash ?? dummyHash);
    if (!rec || !ok) {
      throttle.fail(username, addr);
      s.metrics?.adminLogins.inc({ result: "refused" });
      s.log.warn({ reqId: ctx.state.reqId, user: username, client: addr }, "admin login refused");
      throw new EstcaError("unauthorized", "wrong user name or password");
    }
    throttle.succeed(username, addr);
    s.metrics?.adminLogins.inc({ result: "ok" });
    const old = sessions.get(ctx.cookies.get(SESSION_COOKIE));
    if (old) sessions.destroy(old.id);
    const session = sessions.create(rec.name);
    ctx.state.session = session;
    // A browser-session cookie (no Expires): closing the browser forgets it; the server ends it
    // at expiresAt in any case.
    ctx.cookies.set(SESSION_COOKIE, session.id, { httpOnly: true, sameSite: "strict", secure: ctx.secure, path: "/", overwrite: true });
    ctx.body = { user: session.user, csrfToken: session.csrf, expiresAt: new Date(session.expiresAt).toISOString() };
  });

  r.post("/logout", (ctx) => {
    sessions.destroy((ctx.state.session as Session).id);
    ctx.cookies.set(SESSION_COOKIE, "", { httpOnly: true, sameSite: "strict", secure: ctx.secure, path: "/", overwrite: true, maxAge: 0 });
    ctx.body = { ok: true };
  });

  r.get("/session", (ctx) => {
    const session = ctx.state.session as Session;
    ctx.body = { user: session.user, csrfToken: session.csrf, expiresAt: new Date(session.expiresAt).toISOString() };
  });

  r.get("/dashboard", (ctx) => {
    ctx.body = dashboard(s, originOf(ctx, s));
  });

  r.get("/ca.pem", (ctx) => {
    ctx.set("Content-Type", "application/x-pem-file");
    ctx.set("Content-Disposition", 'attachment; filename="ca.pem"');
    ctx.body = s.ca.trustAnchorsPem();
  });

  r.get("/certificates", (ctx) => {
    const q: CertQuery = {
      q: typeof ctx.query.q === "string" ? ctx.query.q.slice(0, 200) : undefined,
      status: enumParam(ctx, "status", ["valid", "revoked", "superseded", "expired", "expiring"] as const),
      sort: enumParam(ctx, "sort", ["created", "subject", "serial", "status", "expiry"] as const),
      order: enumParam(ctx, "order", ["asc", "desc"] as const),
      limit: intParam(ctx, "limit", 50, 1, 500),
      offset: intParam(ctx, "offset", 0, 0, 1e9),
    };
    const { total, items } = s.store.certs.list(q);
    const note = q.q && [...q.q].length < SUBSTRING_SEARCH_MIN ? `searches of fewer than ${SUBSTRING_SEARCH_MIN} characters match the start of serial numbers only; type more to search subjects, SANs and requesters` : undefined;
    ctx.body = { total, items: items.map((c) => certSummary(c)), note };
  });

  const certOr404 = (serial: string) => {
    const rec = s.store.certs.get(normalizeSerial(serial));
    if (!rec || rec.kind !== "ee") throw notFound(`no certificate with serial ${serial}`);
    return rec;
  };

  r.get("/certificates/:serial", (ctx) => {
    ctx.body = certDetail(certOr404(ctx.params.serial));
  });

  r.get("/certificates/:serial/pem", (ctx) => {
    const d = certDetail(certOr404(ctx.params.serial));
    ctx.set("Content-Type", "application/x-pem-file");
    ctx.set("Content-Disposition", `attachment; filename="${d.serial}.pem"`);
    ctx.body = d.pem;
  });

  r.post("/certificates/:serial/revoke", async (ctx) => {
    const body = await readJson(ctx);
    const reason = str(body, "reason", { max: 64 }) || "unspecified";
    if (!(REVOCATION_REASONS as readonly string[]).includes(reason)) throw badRequest(`unknown revocation reason "${reason}"; use one of ${REVOCATION_REASONS.join(", ")}`);
    const rec = certOr404(ctx.params.serial);
    const updated = await revokeCertificate(s.store, rec.serial, reason);
    s.log.info({ reqId: ctx.state.reqId, serial: updated.serial, reason, by: (ctx.state.session as Session).user }, "certificate revoked");
    ctx.body = certDetail(updated);
  });

  r.get("/revocation-reasons", (ctx) => {
    ctx.body = REVOCATION_REASONS;
  });

  r.get("/approvals", (ctx) => {
    const state = enumParam(ctx, "state", ["pending", "approved", "rejected", "issued", "all"] as const) ?? "pending";
    ctx.body = s.store.enrollments.list(state === "all" ? undefined : state).map(enrollmentView);
  });

  for (const [action, decision] of [["approve", "approved"], ["reject", "rejected"]] as const) {
    r.post(`/approvals/:id/${action}`, async (ctx) => {
      const body = await readJson(ctx);
      const reason = str(body, "reason", { required: decision === "rejected", max: 500 });
      const by = `admin:${(ctx.state.session as Session).user}`;
      const e = decideEnrollment(s.store, Number(ctx.params.id), decision, by, reason);
      s.log.info({ reqId: ctx.state.reqId, enrollment: e.id, decision, by }, "enrollment decided");
      ctx.body = enrollmentView(e);
    });
  }

  r.get("/requests", (ctx) => {
    const client = typeof ctx.query.client === "string" ? ctx.query.client.slice(0, 200) : undefined;
    const rows = s.store.requests.list({
      client: client || undefined,
      afterId: intParam(ctx, "afterId", 0, 0, Number.MAX_SAFE_INTEGER),
      limit: intParam(ctx, "limit", 100, 1, 1000),
      failuresOnly: ctx.query.failures === "1" || ctx.query.failures === "true",
    });
    ctx.body = rows.map(requestView);
  });

  r.get("/users", (ctx) => {
    ctx.body = { users: s.store.users.list("est").map(userView), profiles: Object.keys(s.config.profiles) };
  });

  r.post("/users", async (ctx) => {
    const body = await readJson(ctx);
    const name = str(body, "name", { required: true, max: 64 });
    if (!USER_NAME.test(name)) throw badRequest(`user name "${name}" must be 1-64 letters, digits, . _ @ or -`);
    const given = str(body, "password", { max: 1024 });
    if (given && given.length < 12) throw badRequest("a password must be at least 12 characters; leave it empty to have one generated");
    const rawLabels = body.labels ?? [];
    if (!Array.isArray(rawLabels) || rawLabels.some((l) => typeof l !== "string")) throw badRequest(`"labels" must be a list of profile names`);
    const labels = [...new Set(rawLabels as string[])];
    for (const l of labels) if (l !== "*" && !Object.hasOwn(s.config.profiles, l)) throw notFound(`no profile "${l}" (profiles: ${Object.keys(s.config.profiles).join(", ")})`);
    const password = given || generatePassword();
    if (!s.store.users.add({ name, passwordHash: hashPassword(password), labels, role: "est" })) throw conflict(`user "${name}" already exists; remove it first to change it`);
    s.log.info({ reqId: ctx.state.reqId, name, labels, by: (ctx.state.session as Session).user }, "EST user added");
    ctx.status = 201;
    ctx.body = { ...userView(s.store.users.get(name, "est")!), ...(given ? {} : { password }) };
  });

  r.delete("/users/:name", (ctx) => {
    const name = ctx.params.name;
    if (!s.store.users.remove(name, "est")) throw notFound(`no EST user "${name}"`);
    s.log.info({ reqId: ctx.state.reqId, name, by: (ctx.state.session as Session).user }, "EST user removed");
    ctx.body = { ok: true };
  });

  const routes = r.routes() as unknown as (ctx: Context, next: Next) => Promise<void>;
  return async (ctx, next) => {
    if (ctx.path !== "/api" && !ctx.path.startsWith("/api/")) return next();
    await frame(ctx, () => guard(ctx, () => routes(ctx, async () => {})));
  };
}
