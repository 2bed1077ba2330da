import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { isIP } from "node:net";
import type { CertificateAuthority } from "../ca/authority.ts";
import type { Config } from "../config/schema.ts";
import type { DataPaths } from "../config/paths.ts";
import { toPem } from "../pki/encoding.ts";
import type { GeneralNameEntry } from "../pki/names.ts";

/** The names the EST listener answers to: loopback, this host, and what the operator added. */
export function listenerNames(config: Config): GeneralNameEntry[] {
  const dns = new Set(["localhost", ...(hostname() ? [hostname()] : []), ...config.tls.dnsNames]);
  const ips = new Set(["127.0.0.1", "::1", ...config.tls.ipAddresses]);
  return [...[...dns].map((value) => ({ type: "dns" as const, value })), ...[...ips].map((value) => ({ type: "ip" as const, value }))];
}

export function validateIp(s: string): string {
  if (!isIP(s)) throw new Error(`${s} is not an IP address`);
  return s;
}

/**
 * Issues a fresh certificate for the EST listener under the CA's current key. Its key is a
 * software key on disk (mode 0600): TLS needs it in the process, unlike the CA keys.
 * `chain` is what the listener sends after its own certificate (rollover links, for example).
 */
export async function issueListenerCert(ca: CertificateAuthority, config: Config, paths: DataPaths, chain: Buffer[] = []): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const issued = await ca.issue({
    subject: `CN=${hostname() || "localhost"}, O=estca EST server`,
    spki: publicKey.export({ type: "spki", format: "der" }),
    keyAlgorithm: "ec",
    sans: listenerNames(config),
    validityDays: 397,
    keyUsage: ["digitalSignature"],
    extendedKeyUsage: ["serverAuth"],
    profile: "_listener",
    requester: "estca",
    kind: "tls",
  });
  mkdirSync(paths.tlsDir, { recursive: true, mode: 0o700 });
  writeFileSync(paths.tlsKey, privateKey.export({ type: "pkcs8", format: "pem" }) as string, { mode: 0o600 });
  writeFileSync(paths.tlsCert, [issued.der, ...chain].map((d) => toPem(d, "CERTIFICATE")).join(""), { mode: 0o600 });
}

export function writeTrustAnchors(ca: CertificateAuthority, paths: DataPaths): void {
  writeFileSync(paths.caPem, ca.trustAnchorsPem(), { mode: 0o600 });
}
