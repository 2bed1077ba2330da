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

/** Sets an EST success body: base64 wrapped at 64 columns, with Content-Transfer-Encoding. */
export function sendBase64(ctx: Context, contentType: string, der: Uint8Array, status = 200): void {
  ctx.status = status;
  ctx.set("Content-Type", contentType);
  ctx.set("Content-Transfer-Encoding", "base64");
  ctx.body = Buffer.from(encodeBase64Wrapped(der), "ascii");
}
