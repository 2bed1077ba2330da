import { timingSafeEqual } from "node:crypto";
import type { Profile } from "../config/schema.ts";
import { badRequest } from "../errors.ts";
import type { ParsedCsr } from "../pki/csr.ts";
import type { GeneralNameEntry } from "../pki/names.ts";
import type { ChannelBinding } from "./client.ts";

/** Checks a CSR's key and subject against a profile; returns the SANs the profile lets through. */
export function applyProfile(profileName: string, profile: Profile, csr: ParsedCsr): { sans: GeneralNameEntry[]; dropped: GeneralNameEntry[] } {
  if (!profile.keyTypes.includes(csr.keyType)) {
    throw badRequest(`CSR key type ${csr.keyType} is not allowed by profile "${profileName}" (allowed: ${profile.keyTypes.join(", ")})`);
  }
  if (csr.keyType === "rsa" && (csr.keyBits < 2048 || csr.keyBits > 4096)) {
    throw badRequest(`CSR RSA key has ${csr.keyBits} bits; 2048 to 4096 are accepted`);
  }
  const rules = profile.subject;
  for (const a of csr.subjectAttributes) {
    if (!rules.allowedAttributes.includes(a.type)) {
      throw badRequest(`CSR subject attribute ${a.type} is not allowed by profile "${profileName}" (allowed: ${rules.allowedAttributes.join(", ")})`);
    }
  }
  if (rules.requireCommonName && !csr.commonName) {
    throw badRequest(`CSR subject has no commonName (CN), which profile "${profileName}" requires`);
  }
  if (rules.commonNamePattern && csr.commonName !== null && !new RegExp(rules.commonNamePattern).test(csr.commonName)) {
    throw badRequest(`CSR commonName "${csr.commonName}" does not match the pattern ${rules.commonNamePattern} of profile "${profileName}"`);
  }
  const sans = csr.sans.filter((s) => s.type !== "other" && profile.sanTypes.includes(s.type));
  const dropped = csr.sans.filter((s) => !sans.includes(s));
  if (!csr.commonName && sans.length === 0) throw badRequest("CSR has neither a commonName nor a subjectAltName this profile allows: the certificate would name no one");
  return { sans, dropped };
}

/**
 * RFC 7030 3.5: the challengePassword carries the TLS channel binding, base64, proving the CSR
 * was made for this very TLS session. TLS 1.2 uses tls-unique (RFC 5929); TLS 1.3 has none, so
 * estca uses tls-exporter (RFC 9266).
 */
export function checkChannelBinding(profileName: string, profile: Profile, csr: ParsedCsr, cb: ChannelBinding | null, tlsVersionRaw: string | null): void {
  if (profile.channelBinding === "off") return;
  // "TLSv1.3" as people write it: "TLS 1.3".
  const tlsVersion = tlsVersionRaw ? tlsVersionRaw.replace(/^TLSv/, "TLS ") : null;
  const sent = csr.challengePassword;
  if (sent === null) {
    if (profile.channelBinding === "required") {
      const what = cb ? `the base64 ${cb.type} value of this ${tlsVersion ?? "TLS"} connection` : "a channel binding";
      throw badRequest(`profile "${profileName}" requires channel binding: the CSR's challengePassword must carry ${what}`);
    }
    return;
  }
  if (!cb) throw badRequest(`CSR carries a challengePassword but this connection offers no channel binding to compare it with`);
  const expected = cb.value.toString("base64");
  const a = Buffer.from(sent.trim());
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    const hint = sent.trim().length === 16 && cb.type === "tls-exporter" ? " (it looks like a TLS 1.2 tls-unique value)" : sent.trim().length === 44 && cb.type === "tls-unique" ? " (it looks like a TLS 1.3 tls-exporter value)" : "";
    throw badRequest(`challengePassword does not match the ${cb.type} value of this ${tlsVersion ?? "TLS"} connection${hint}`);
  }
}
