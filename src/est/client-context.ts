import type { TLSSocket } from "node:tls";
import type { Context } from "koa";
import basicAuth from "basic-auth";
import type { ChannelBinding, ClientContext } from "../ra/client.ts";

/**
 * The channel binding of this TLS connection (RFC 7030 3.5).
 * TLS 1.2: tls-unique (RFC 5929) is the first Finished message: the client's on a full
 * handshake, the server's on a resumed one. TLS 1.3: tls-exporter (RFC 9266).
 */
export function channelBindingOf(sock: TLSSocket): ChannelBinding | null {
  const version = sock.getProtocol?.();
  if (version === "TLSv1.3") {
    return { type: "tls-exporter", value: sock.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0)) };
  }
  if (version === "TLSv1.2") {
    const v = sock.isSessionReused() ? sock.getFinished() : sock.getPeerFinished();
    return v ? { type: "tls-unique", value: v } : null;
  }
  return null;
}

/** The client's certificate chain as it sent it, leaf first. */
export function peerChainOf(sock: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let c = sock.getPeerCertificate?.(true);
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    chain.push(c.raw);
    c = c.issuerCertificate;
  }
  return chain;
}

export function clientContextOf(ctx: Context): ClientContext {
  const sock = ctx.req.socket as TLSSocket;
  const isTls = typeof sock.getProtocol === "function";
  const creds = basicAuth(ctx.req);
  return {
    addr: sock.remoteAddress ?? null,
    basic: creds ? { user: creds.name, password: creds.pass } : null,
    tlsVersion: isTls ? sock.getProtocol() : null,
    channelBinding: isTls ? channelBindingOf(sock) : null,
    peerChain: isTls ? peerChainOf(sock) : [],
  };
}
