import { randomBytes } from "node:crypto";
import type { Context } from "koa";
import getRawBody from "raw-body";
import { EstcaError, badRequest } from "../errors.ts";
import { decodeBase64Strict, encodeBase64Wrapped, isPem } from "../pki/encoding.ts";
import { ACCEPTED_REQUEST_TYPES, bareType } from "./media.ts";

/**
 * Reads a request body whether it is sized or chunked, up to `limit` bytes. raw-body enforces
 * the limit while streaming, so an oversized body is refused before it is buffered.
 */
export async function readBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = ctx.get("Content-Length");
  if (declared && Number(declared) > limit) {
    throw new EstcaError("too_large", `request body of ${declared} bytes is larger than the limit of ${limit} bytes`);
  }
  try {
    return await getRawBody(ctx.req, { limit, length: declared || undefined });
  } catch (e) {
    const type = (e as { type?: string }).type;
    if (type === "entity.too.large") throw new EstcaError("too_large", `request body is larger than the limit of ${limit} bytes`);
    if (type === "request.size.invalid") throw badRequest("request body is shorter or longer than its Content-Length");
    if (type === "request.aborted") throw badRequest("the client aborted the request body");
    throw badRequest(`cannot read the request body: ${(e as Error).message}`);
  }
}

export function checkContentType(ctx: Context, operation: string): void {
  const got = bareType(ctx.get("Content-Type"));
  const ok = ACCEPTED_REQUEST_TYPES[operation] ?? [];
  if (!ok.includes(got)) {
    throw new EstcaError("unsupported_media_type", got ? `Content-Type ${got} is not accepted by /${operation}; send ${ok[0]}` : `missing Content-Type: /${operation} expects ${ok[0]}`);
  }
}

/**
 * The DER inside an EST request body. RFC 8951 makes base64 the encoding whatever
 * Content-Transfer-Encoding says; PEM-armoured CSRs (some IoT clients send them) and, as a
 * courtesy, raw DER with an explicit "binary" transfer encoding are accepted too.
 */
export function decodeEstBody(ctx: Context, body: Buffer, what: string): Buffer {
  if (body.length === 0) throw badRequest(`${what}: the request body is empty`);
  const cte = (ctx.get("Content-Transfer-Encoding") || "").trim().toLowerCase();
  if (cte === "binary" || (body[0] === 0x30 && cte !== "base64" && looksBinary(body))) return body;
  const text = body.toString("latin1");
  if (isPem(text)) {
    const m = text.match(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/);
    if (!m) throw badRequest(`${what}: PEM armour is not closed`);
    return decodeBase64Strict(m[2], what);
  }
  return decodeBase64Strict(text, what);
}

function looksBinary(b: Buffer): boolean {
  // base64 text never contains bytes outside printable ASCII; DER nearly always does.
  for (let i = 0; i < Math.min(b.length, 64); i++) if (b[i] < 0x09 || b[i] > 0x7e) return true;
  return false;
}

/**
 * How to lay out base64 for this client. The C reference client (libest) needs line breaks and
 * a final newline; strongSwan's `pki --est` decodes with a decoder that does not skip line
 * breaks, so it needs one unbroken line. libest (like curl, Go and every browser) sends a
 * User-Agent; strongSwan sends no User-Agent and no Accept, which is how we recognise it.
 */
export function base64LayoutFor(ctx: Context): "wrapped" | "one-line" {
  return ctx.get("User-Agent") || ctx.get("Accept") ? "wrapped" : "one-line";
}

export function encodeBase64For(ctx: Context, der: Uint8Array): string {
  return base64LayoutFor(ctx) === "wrapped" ? encodeBase64Wrapped(der) : Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
}

/** Sets an EST success body: base64 laid out for this client (base64LayoutFor), with Content-Transfer-Encoding. */
export function sendBase64(ctx: Context, contentType: string, der: Uint8Array, status = 200): void {
  ctx.status = status;
  ctx.set("Content-Type", contentType);
  ctx.set("Content-Transfer-Encoding", "base64");
  ctx.body = Buffer.from(encodeBase64For(ctx, der), "ascii");
}

/** Reads the body of a POST operation (PKCS#10 or CMS), enforcing the media type and the size limit. */
export async function readEstBody(ctx: Context, limit: number, operation: string, what: string): Promise<Buffer> {
  checkContentType(ctx, operation);
  const body = await readBody(ctx, limit);
  return decodeEstBody(ctx, body, what);
}

/** RFC 7030 4.2.3: a held request answers 202 with Retry-After; the client polls with the same request. */
export function sendPending(ctx: Context, enrollmentId: number, retryAfter: number): void {
  ctx.status = 202;
  ctx.set("Retry-After", String(retryAfter));
  ctx.set("Content-Type", "text/plain; charset=utf-8");
  ctx.body = Buffer.from(`request ${enrollmentId} is waiting for approval; retry in ${retryAfter} s\n`);
}

/**
 * A multipart/mixed answer (RFC 7030 4.4.2) whose every part is base64 with its own
 * Content-Transfer-Encoding header: the C reference client needs the per-part header.
 */
export function sendMultipart(ctx: Context, parts: { contentType: string; der: Uint8Array }[]): void {
  const boundary = `estca-${randomBytes(12).toString("hex")}`;
  const body =
    parts
      .map((p) => `--${boundary}\r\nContent-Type: ${p.contentType}\r\nContent-Transfer-Encoding: base64\r\n\r\n${encodeBase64For(ctx, p.der).replace(/\n?$/, "").replace(/\n/g, "\r\n")}\r\n`)
      .join("") + `--${boundary}--\r\n`;
  ctx.status = 200;
  ctx.set("Content-Type", `multipart/mixed; boundary=${boundary}`);
  ctx.body = Buffer.from(body, "ascii");
}
