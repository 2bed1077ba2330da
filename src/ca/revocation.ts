import { X509CrlReason } from "@peculiar/x509";
import { badRequest, conflict, notFound } from "../errors.ts";
import type { CertRecord, Store } from "../store/index.ts";

/** RFC 5280 CRLReason names accepted by `estca revoke --reason` and the admin API. */
export const REVOCATION_REASONS = [
  "unspecified",
  "keyCompromise",
  "cACompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "certificateHold",
  "privilegeWithdrawn",
  "aACompromise",
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export function reasonCode(r: string): X509CrlReason {
  return X509CrlReason[r as keyof typeof X509CrlReason] ?? X509CrlReason.unspecified;
}

export function normalizeSerial(serial: string): string {
  const s = serial.trim().toLowerCase().replace(/[:\s]/g, "").replace(/^0x/, "");
  if (!/^[0-9a-f]+$/.test(s)) throw badRequest(`"${serial}" is not a hexadecimal serial number`);
  return s.replace(/^0+(?=.)/, "");
}

type Listener = (rec: CertRecord) => void | Promise<void>;
const listeners: Listener[] = [];

/** Lets the CRL publisher (and others) react to a revocation in this process. */
export function onRevocation(l: Listener): void {
  listeners.push(l);
}

/** Revokes a certificate in the store. Twice, or an unknown serial, is a clear error. */
export async function revokeCertificate(store: Store, serial: string, reason: string = "unspecified", at = Date.now()): Promise<CertRecord> {
  if (!(REVOCATION_REASONS as readonly string[]).includes(reason)) {
    throw badRequest(`unknown revocation reason "${reason}"; use one of ${REVOCATION_REASONS.join(", ")}`);
  }
  const s = normalizeSerial(serial);
  const rec = store.certs.get(s);
  if (!rec) throw notFound(`no certificate with serial ${serial}`);
  if (rec.status === "revoked") throw conflict(`certificate ${s} is already revoked (since ${new Date(rec.revokedAt!).toISOString()}, ${rec.revocationReason})`);
  if (!store.certs.revoke(s, reason, at)) throw conflict(`certificate ${s} was revoked concurrently`);
  const updated = store.certs.get(s)!;
  for (const l of listeners) await l(updated);
  return updated;
}
