// What the RA is told about a client. est/ fills it from the TLS socket and HTTP headers; the RA
// never sees either.

export interface ChannelBinding {
  type: "tls-unique" | "tls-exporter";
  value: Buffer;
}

export interface ClientContext {
  addr: string | null;
  /** Credentials from an Authorization: Basic header, if any. */
  basic: { user: string; password: string } | null;
  tlsVersion: string | null;
  channelBinding: ChannelBinding | null;
  /** The client's TLS certificate chain, leaf first, as sent. */
  peerChain: Buffer[];
}

export type AuthMethod = "basic" | "cert" | "external-cert";

export interface Identity {
  method: AuthMethod;
  /** User name, or the certificate's subject. */
  name: string;
  /** Serial of the authenticating certificate when it is one of ours. */
  serial?: string;
  certDer?: Buffer;
}

export function describeIdentity(i: Identity): string {
  return i.method === "basic" ? `user:${i.name}` : `cert:${i.name}`;
}
