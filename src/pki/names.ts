import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { GeneralNames as AsnGeneralNames } from "@peculiar/asn1-x509";
import { badRequest } from "../errors.ts";
import { OID } from "./oids.ts";
import type { SanType } from "../config/schema.ts";

export interface GeneralNameEntry {
  type: SanType | "other";
  value: string;
}

const FROM_X509: Record<string, SanType> = { dns: "dns", ip: "ip", email: "email", url: "uri" };

/** SANs of a DER Extension (subjectAltName), as typed entries. */
export function sanFromExtensionDer(extDer: Uint8Array): GeneralNameEntry[] {
  try {
    const ext = new x509.SubjectAlternativeNameExtension(new Uint8Array(extDer));
    return entriesOf(ext.names);
  } catch (e) {
    throw badRequest(`subjectAltName extension is malformed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** SANs of an already parsed GeneralNames, as typed entries (throws on a malformed name). */
export function sanFromGeneralNames(names: AsnGeneralNames): GeneralNameEntry[] {
  return entriesOf(new x509.GeneralNames(names));
}

function entriesOf(names: x509.GeneralNames): GeneralNameEntry[] {
  return names.items.map((n) => ({ type: FROM_X509[n.type] ?? "other", value: n.type in FROM_X509 ? n.value : `${n.type}:${n.value}` }));
}

/** The form the store and UI use: "dns:host.example". */
export function sanStrings(sans: GeneralNameEntry[]): string[] {
  return sans.map((s) => `${s.type}:${s.value}`);
}

export function sameSans(a: GeneralNameEntry[], b: GeneralNameEntry[]): boolean {
  const norm = (l: GeneralNameEntry[]) => sanStrings(l).map((s) => s.toLowerCase()).sort().join("\n");
  return norm(a) === norm(b);
}

/** Subject and SANs of a certificate, in the same forms a parsed CSR uses. */
export function certSubjectAndSans(der: Buffer): { subject: string; sans: GeneralNameEntry[] } {
  const c = new x509.X509Certificate(new Uint8Array(der));
  const ext = c.getExtension(OID.subjectAltName);
  return { subject: c.subject, sans: ext ? sanFromExtensionDer(new Uint8Array(ext.rawData)) : [] };
}
