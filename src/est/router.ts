import { X509Certificate, randomUUID } from "node:crypto";
import type { Context, Next } from "koa";
import { EstcaError, notFound } from "../errors.ts";
import { textErrors } from "../http/errors.ts";
import { describeIdentity, type Identity } from "../ra/client.ts";
import type { EnrollOperation } from "../ra/registration-authority.ts";
import type { Services } from "../server/services.ts";
import { certsOnly } from "../pki/cms.ts";
import { clientContextOf } from "./client-context.ts";
import { CT_CERTS_ONLY } from "./media.ts";
import { readEstBody, sendBase64, sendPending } from "./wire.ts";
import { csrattrsHandler } from "./csrattrs.ts";
import { fullcmcHandler } from "./fullcmc.ts";
import { serverkeygenHandler } from "./serverkeygen.ts";

export const EST_PREFIX = "/.well-known/est";

export const EST_OPERATIONS: Record<string, "GET" | "POST"> = {
  cacerts: "GET",
  csrattrs: "GET",
  simpleenroll: "POST",
  simplereenroll: "POST",
  serverkeygen: "POST",
  fullcmc: "POST",
};

/** Per-request facts the request log records; handlers fill in what they learn. */
export interface EstState {
  requestId: string;
  operation: string;
  label: string | null;
  identity?: Identity;
  serial?: string;
  enrollmentId?: number;
  failure?: { status: number; reason: string };
}

export type EstHandler = (ctx: Context, s: Services, label: string | null, st: EstState) => Promise<void>;

/**
 * Handlers for the operations. Each one is small: it reads the wire format, asks the RA or CA,
 * and writes the wire format back. Other modules (serverkeygen, fullcmc, csrattrs) register here.
 */
export const handlers: Partial<Record<string, EstHandler>> = {
  cacerts: async (ctx, s, label) => {
    s.ra.profile(label);
    sendBase64(ctx, CT_CERTS_ONLY, cacertsDer(s));
  },
  simpleenroll: (ctx, s, label, st) => enrollHandler(ctx, s, label, st, "simpleenroll"),
  simplereenroll: (ctx, s, label, st) => enrollHandler(ctx, s, label, st, "simplereenroll"),
  csrattrs: csrattrsHandler,
  serverkeygen: serverkeygenHandler,
  fullcmc: fullcmcHandler,
};

let cacertsCache: { key: string; der: Buffer } | null = null;

/** The certs-only bundle of /cacerts, rebuilt only when the CA's certificate set changes. */
export function cacertsDer(s: Services): Buffer {
  const certs = s.ca.cacerts();
  const key = certs.map((c) => c.toString("base64")).join(",");
  if (cacertsCache?.key !== key) cacertsCache = { key, der: certsOnly(certs) };
  return cacertsCache.der;
}

/** Reads the CSR of a POST operation, enforcing the media type and the size limit. */
export function readCsr(ctx: Context, s: Services, operation: string): Promise<Buffer> {
  return readEstBody(ctx, s.config.server.bodyLimit, operation, "PKCS#10 request");
}

async function enrollHandler(ctx: Context, s: Services, label: string | null, st: EstState, operation: EnrollOperation): Promise<void> {
  const client = clientContextOf(ctx);
  // Authenticate before reading the body, so an anonymous client learns it needs credentials
  // (and gets its 401 challenge) without uploading anything.
  const { name, profile, identity } = await s.ra.authenticate(label, client);
  st.identity = identity;
  const csrDer = await readCsr(ctx, s, operation);
  const csr = await s.ra.checkCsr(name, profile, csrDer, client);
  const result = await s.ra.decide(operation, name, profile, identity, csr);
  if (result.kind === "pending") {
    st.enrollmentId = result.enrollmentId;
    return sendPending(ctx, result.enrollmentId, result.retryAfter);
  }
  st.serial = result.issued.serial;
  sendBase64(ctx, CT_CERTS_ONLY, certsOnly([result.issued.der]));
}

/** A malformed %-escape is no reason for a 500: the raw segment then simply names no profile (404). */
function decodeLabel(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Splits /.well-known/est/[LABEL/]OP. Any other path under the EST prefix is still an EST request
 * (logged, 404 with a hint): a client with a wrong base URL is exactly what the log must show.
 */
function parsePath(path: string): { label: string | null; operation: string; malformed?: true } | null {
  if (path === EST_PREFIX) return { label: null, operation: "", malformed: true };
  if (!path.startsWith(EST_PREFIX + "/")) return null;
  const rest = path.slice(EST_PREFIX.length + 1);
  const parts = rest.split("/");
  if (parts.length === 1) return { label: null, operation: parts[0] };
  if (parts.length === 2 && parts[0]) return { label: decodeLabel(parts[0]), operation: parts[1] };
  return { label: null, operation: rest.slice(0, 100), malformed: true };
}

/** Koa middleware serving everything under /.well-known/est/. */
export function estMiddleware(s: Services) {
  const errors = textErrors((e, ctx) => s.log.error({ err: e, path: ctx.path }, "EST request failed"));
  return async (ctx: Context, next: Next) => {
    const parsed = parsePath(ctx.path);
    if (!parsed) return next();
    const started = performance.now();
    const st: EstState = { requestId: randomUUID(), operation: parsed.operation, label: parsed.label };
    ctx.state.est = st;
    await errors(ctx, async () => {
      if (parsed.malformed) throw notFound(`${ctx.path.slice(0, 200)} is not an EST path: use ${EST_PREFIX}/OP or ${EST_PREFIX}/LABEL/OP (a client's base URL is the server's origin or ${EST_PREFIX}/)`);
      const method = EST_OPERATIONS[parsed.operation];
      if (!method) throw notFound(`unknown EST operation "${parsed.operation}" (known: ${Object.keys(EST_OPERATIONS).join(", ")})`);
      if (ctx.method !== method && !(method === "GET" && ctx.method === "HEAD")) {
        ctx.set("Allow", method);
        throw new EstcaError("method_not_allowed", `/${parsed.operation} takes ${method}, not ${ctx.method}`);
      }
      const h = handlers[parsed.operation];
      if (!h) throw notFound(`/${parsed.operation} is not enabled on this server`);
      await h(ctx, s, parsed.label, st);
    });
    if (ctx.state.failure) st.failure = ctx.state.failure;
    logRequest(ctx, s, st, performance.now() - started);
  };
}

function logRequest(ctx: Context, s: Services, st: EstState, ms: number): void {
  const client = ctx.req.socket as { remoteAddress?: string; getProtocol?: () => string | null };
  const identity = st.identity ? describeIdentity(st.identity) : (() => {
    try {
      const c = clientContextOf(ctx);
      // A refused certificate is still worth naming: it is what the developer must go and fix.
      return c.basic ? `user:${c.basic.user}` : c.peerChain.length ? `cert:(unverified) ${new X509Certificate(c.peerChain[0]).subject.replace(/\n/g, ", ")}` : null;
    } catch {
      return null;
    }
  })();
  const entry = {
    at: Date.now(),
    requestId: st.requestId,
    operation: st.operation,
    label: st.label,
    method: ctx.method,
    clientAddr: client.remoteAddress ?? null,
    clientIdentity: identity,
    authMethod: st.identity?.method ?? null,
    tlsVersion: client.getProtocol?.() ?? null,
    status: ctx.status,
    reason: st.failure?.reason ?? null,
    serial: st.serial ?? null,
    enrollmentId: st.enrollmentId ?? null,
    durationMs: Math.round(ms * 100) / 100,
  };
  s.store.requests.add(entry);
  s.onEstRequest?.(entry);
  s.log.info({ reqId: st.requestId, op: st.operation, label: st.label, status: ctx.status, client: identity, tls: entry.tlsVersion, ms: entry.durationMs, reason: entry.reason ?? undefined }, "est request");
}

