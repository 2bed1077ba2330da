import http, { STATUS_CODES } from "node:http";
import type https from "node:https";
import type { Duplex } from "node:stream";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log.ts";

/**
 * Options that must be given when a listener is created. Node checks header and request
 * timeouts only every `connectionsCheckingInterval` (30 s by default), which would let a
 * slow client hold a socket far longer than configured; and an https server waits 120 s for
 * a TLS handshake unless told otherwise.
 */
export function listenerOptions(server: Config["server"]): { connectionsCheckingInterval: number; handshakeTimeout: number; requireHostHeader: boolean } {
  const shortest = Math.min(server.headersTimeoutMs, server.requestTimeoutMs);
  return {
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(shortest / 4))),
    handshakeTimeout: server.headersTimeoutMs,
    // Node's own refusal is an empty 400; checkRequestHead says why instead.
    requireHostHeader: false,
  };
}

/** More header fields than any EST client sends; the 16 kB header size limit bounds them anyway. */
export const MAX_HEADER_FIELDS = 100;

function refuse(res: http.ServerResponse, status: number, reason: string): void {
  const body = Buffer.from(reason + "\n", "utf8");
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": body.length, Connection: "close" });
  res.end(body);
}

/**
 * Refuses, with a reason, requests whose head is malformed in ways Node's parser lets through:
 * too many header fields (set maxHeadersCount to 0 so they are counted, not silently dropped:
 * dropping them lost the Host header and produced an empty 400), and HTTP/1.1 without Host.
 */
export function checkRequestHead(handler: http.RequestListener): http.RequestListener {
  return (req, res) => {
    const fields = req.rawHeaders.length / 2;
    if (fields > MAX_HEADER_FIELDS) return refuse(res, 431, `the request has ${fields} header fields; at most ${MAX_HEADER_FIELDS} are accepted`);
    if (req.httpVersion === "1.1" && req.headers.host === undefined) return refuse(res, 400, "an HTTP/1.1 request needs a Host header");
    handler(req, res);
  };
}

/** Why Node's HTTP parser refused a request, in words a client developer can act on. */
function clientErrorReply(err: NodeJS.ErrnoException): { status: number; reason: string } {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, reason: `request headers are larger than the limit of ${http.maxHeaderSize} bytes` };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, reason: "the request was not received completely in time" };
    case "HPE_INVALID_METHOD":
      return { status: 400, reason: "malformed request line: unknown HTTP method" };
    case "HPE_INVALID_HEADER_TOKEN":
      return { status: 400, reason: "malformed header: invalid character in a header name" };
    case "HPE_INVALID_CONTENT_LENGTH":
    case "HPE_UNEXPECTED_CONTENT_LENGTH":
      return { status: 400, reason: "malformed Content-Length header" };
    case "HPE_INVALID_TRANSFER_ENCODING":
    case "HPE_INVALID_CHUNK_SIZE":
      return { status: 400, reason: "malformed chunked body or Transfer-Encoding" };
    default:
      return { status: 400, reason: `malformed HTTP request (${err.code ?? "parse error"})` };
  }
}

/**
 * Requests Node refuses before any handler runs (oversized or malformed headers, timeouts)
 * get the same kind of answer as every other failure: a status and a text/plain reason.
 * Node's default reply is an empty 400.
 */
export function answerClientErrors(srv: http.Server | https.Server, log: Logger): void {
  srv.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex & { _httpMessage?: { headersSent?: boolean } }) => {
    // A reply is possible only while nothing of a response has gone out on this socket.
    if (err.code === "ECONNRESET" || !socket.writable || socket._httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    const { status, reason } = clientErrorReply(err);
    log.debug({ code: err.code, status }, "refused a malformed or slow request");
    const body = Buffer.from(reason + "\n", "utf8");
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n` + body.toString("utf8"),
    );
  });
}
