import type Koa from "koa";
import type { Context, Next } from "koa";
import getRawBody from "raw-body";
import { CrlPublisher } from "../ca/crl.ts";
import { OcspResponder } from "../ca/ocsp.ts";
import { EstcaError, badRequest, notFound } from "../errors.ts";
import { textErrors } from "../http/errors.ts";
import { decodeBase64Strict } from "../pki/encoding.ts";
import type { Services } from "./services.ts";

/** An OCSP request is a few hundred bytes; anything near this is not one. */
const OCSP_BODY_LIMIT = 16 * 1024;

function sendDer(ctx: Context, contentType: string, der: Buffer, maxAgeSeconds?: number): void {
  ctx.status = 200;
  ctx.set("Content-Type", contentType);
  if (maxAgeSeconds !== undefined) ctx.set("Cache-Control", `max-age=${Math.max(0, Math.floor(maxAgeSeconds))}, public, no-transform, must-revalidate`);
  ctx.body = der;
}

function generationOf(file: string, ext: string): number {
  const m = new RegExp(`^([1-9][0-9]{0,8})\\.${ext}$`).exec(file);
  if (!m) throw notFound(`no such file "${file}": names are GENERATION.${ext}, e.g. 1.${ext}`);
  return Number(m[1]);
}

/**
 * The plain-HTTP PKI edge, at the URLs written into every certificate:
 * /crl/GEN.crl (and /crl for the current key), /ca/GEN.crt, and the OCSP responder at /ocsp
 * (RFC 6960 appendix A: POST, and GET with the base64 request in the path).
 */
export function mountPki(app: Koa, s: Services): void {
  const crls = new CrlPublisher(s.ca, s.config.crl);
  const ocsp = new OcspResponder(s.ca, s.config.ocsp);
  const errors = textErrors((e, ctx) => s.log.error({ err: e, path: ctx.path }, "PKI request failed"));

  const answerOcsp = async (ctx: Context, der: Uint8Array) => {
    const r = await ocsp.respond(der);
    s.log.info({ op: "ocsp", method: ctx.method, answer: r.summary }, "ocsp request");
    sendDer(ctx, "application/ocsp-response", r.der, ctx.method === "GET" ? s.config.ocsp.validityMinutes * 60 : undefined);
  };

  app.use(async (ctx: Context, next: Next) => {
    const path = ctx.path;
    if (path === "/crl" || path.startsWith("/crl/")) {
      return errors(ctx, async () => {
        if (ctx.method !== "GET" && ctx.method !== "HEAD") throw methodNotAllowed(ctx, "GET");
        const got = await crls.current(path === "/crl" ? undefined : generationOf(path.slice(5), "crl"));
        if (!got) throw notFound(`no CA key of generation ${path.slice(5)}`);
        ctx.set("Last-Modified", new Date(got.crl.thisUpdate).toUTCString());
        sendDer(ctx, "application/pkix-crl", got.crl.der, (got.crl.nextUpdate - Date.now()) / 1000);
      });
    }
    if (path.startsWith("/ca/")) {
      return errors(ctx, async () => {
        if (ctx.method !== "GET" && ctx.method !== "HEAD") throw methodNotAllowed(ctx, "GET");
        const iss = s.ca.issuerByGeneration(generationOf(path.slice(4), "crt"));
        if (!iss) throw notFound(`no CA certificate of generation ${path.slice(4)}`);
        sendDer(ctx, "application/pkix-cert", iss.der);
      });
    }
    if (path === "/ocsp" || path.startsWith("/ocsp/")) {
      return errors(ctx, async () => {
        if (ctx.method === "POST") {
          const der = await getRawBody(ctx.req, { limit: OCSP_BODY_LIMIT, length: ctx.get("Content-Length") || undefined });
          if (!der.length) throw badRequest("the OCSP request body is empty");
          return answerOcsp(ctx, der);
        }
        if (ctx.method !== "GET") throw methodNotAllowed(ctx, "GET, POST");
        // The request is url-encoded base64 in the path; '+' and '/' may also come unencoded.
        const rest = path === "/ocsp" ? "" : path.slice("/ocsp/".length);
        if (!rest) throw badRequest("GET /ocsp/ needs the base64 DER OCSP request in the path (RFC 6960 A.1), or POST it to /ocsp");
        let b64: string;
        try {
          b64 = decodeURIComponent(rest);
        } catch {
          throw badRequest("the OCSP request in the path is not valid percent-encoding");
        }
        return answerOcsp(ctx, decodeBase64Strict(b64, "OCSP request"));
      });
    }
    return next();
  });
}

function methodNotAllowed(ctx: Context, allow: string): EstcaError {
  ctx.set("Allow", allow);
  return new EstcaError("method_not_allowed", `${ctx.path} takes ${allow}, not ${ctx.method}`);
}
