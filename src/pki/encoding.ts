import { badRequest } from "../errors.ts";

const B64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes base64 as EST clients send it: wrapped at any width, LF or CRLF, or one long line.
 * Buffer.from(s, "base64") silently skips foreign characters, so the alphabet is checked first.
 */
export function decodeBase64Strict(text: string, what: string): Buffer {
  const compact = text.replace(/[\r\n\t ]+/g, "");
  if (compact.length === 0) throw badRequest(`${what}: the body is empty`);
  if (!B64_BODY.test(compact)) {
    const bad = compact.match(/[^A-Za-z0-9+/=]/);
    const detail = bad ? `character ${JSON.stringify(bad[0])} at offset ${compact.indexOf(bad[0])}` : "misplaced '=' padding";
    throw badRequest(`${what}: body is not valid base64 (${detail})`);
  }
  if (compact.length % 4 === 1) throw badRequest(`${what}: base64 body has an impossible length (${compact.length} characters)`);
  return Buffer.from(compact, "base64");
}

/** base64 wrapped at 64 columns with a final newline: the strictest clients need both. */
export function encodeBase64Wrapped(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  return (b64.match(/.{1,64}/g) ?? [""]).join("\n") + "\n";
}

export function toPem(der: Uint8Array, label: string): string {
  return `-----BEGIN ${label}-----\n${encodeBase64Wrapped(der)}-----END ${label}-----\n`;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block of the given labels in `text`, decoded. */
export function fromPemAll(text: string, labels: string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (labels.includes(m[1])) out.push(decodeBase64Strict(m[2], `PEM ${m[1]}`));
  }
  return out;
}

export function isPem(text: string): boolean {
  return text.trimStart().startsWith("-----BEGIN ");
}

/** Exact-size ArrayBuffer of a Buffer, for libraries that want one. */
export function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}
