import "reflect-metadata";
import * as asn1js from "asn1js";
import * as x509 from "@peculiar/x509";
import type { Profile } from "../config/schema.ts";
import { badRequest, forbidden } from "../errors.ts";
import type { ParsedCsr } from "../pki/csr.ts";
import { keyIdentifier } from "../ca/extensions.ts";
import { OID } from "../pki/oids.ts";
import { type GeneratedKey, type ServerKeyType, generateServerKey } from "../pki/server-key.ts";
import type { Identity } from "./client.ts";
import type { EnrollResult, RegistrationAuthority } from "./registration-authority.ts";

export interface ServerKeygenResult {
  result: EnrollResult;
  /** Present when the certificate was issued. Never stored, never logged. */
  key?: GeneratedKey;
  /** DER of the certificate the key must be encrypted for, when the CSR asked for encryption. */
  encryptFor?: Buffer;
}

/**
 * The key type to generate: the CSR's own key type and size when the profile allows it (the
 * client says what it wants by the key it signs the CSR with), else the profile's default.
 */
export function serverKeyTypeFor(profile: Profile, csr: ParsedCsr): ServerKeyType {
  if (csr.keyType === "rsa" && profile.keyTypes.includes("rsa")) {
    const bits = csr.keyBits >= 4096 ? 4096 : csr.keyBits >= 3072 ? 3072 : 2048;
    return `rsa-${bits}` as ServerKeyType;
  }
  if ((csr.keyType === "ec-p256" || csr.keyType === "ec-p384") && profile.keyTypes.includes(csr.keyType)) return csr.keyType;
  return profile.serverKeygen.defaultKeyType;
}

/**
 * RFC 7030 4.4.1.2: an (Asymmetric)DecryptKeyIdentifier attribute asks for the key to be
 * encrypted. estca encrypts to the client's TLS client certificate, so the identifier must be
 * that certificate's subjectKeyIdentifier.
 */
function encryptionTarget(csr: ParsedCsr, identity: Identity): Buffer | undefined {
  const attr = csr.attributes.find((a) => a.type === OID.asymmetricDecryptKeyIdentifier || a.type === OID.decryptKeyIdentifier);
  if (!attr) return undefined;
  const which = attr.type === OID.asymmetricDecryptKeyIdentifier ? "AsymmetricDecryptKeyIdentifier" : "DecryptKeyIdentifier";
  const v = attr.valuesDer.length === 1 ? asn1js.fromBER(new Uint8Array(attr.valuesDer[0])).result : null;
  if (!(v instanceof asn1js.OctetString)) throw badRequest(`CSR ${which} attribute must hold exactly one OCTET STRING`);
  const wanted = Buffer.from(v.getValue()).toString("hex");
  if (!identity.certDer) {
    throw badRequest(`CSR carries ${which} ${wanted}, but this connection has no TLS client certificate: estca encrypts server-generated keys only to the client's own certificate`);
  }
  const cert = new x509.X509Certificate(new Uint8Array(identity.certDer));
  const skiExt = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const ski = skiExt ? skiExt.keyId.toLowerCase() : keyIdentifier(new Uint8Array(cert.publicKey.rawData));
  if (ski !== wanted.toLowerCase()) {
    throw badRequest(`CSR ${which} ${wanted} does not name the TLS client certificate of this connection (subjectKeyIdentifier ${ski})`);
  }
  return identity.certDer;
}

/** RFC 7030 4.4: the server makes the key pair and certifies it, per the CSR and profile. */
export async function serverKeygen(ra: RegistrationAuthority, name: string, profile: Profile, identity: Identity, csr: ParsedCsr): Promise<ServerKeygenResult> {
  if (!profile.serverKeygen.enabled) throw forbidden(`profile "${name}" does not offer server-side key generation`);
  const encryptFor = encryptionTarget(csr, identity);
  const key = await generateServerKey(serverKeyTypeFor(profile, csr));
  const keyType = key.type.startsWith("rsa-") ? "rsa" : (key.type as "ec-p256" | "ec-p384");
  const keyBits = key.type.startsWith("rsa-") ? Number(key.type.slice(4)) : key.type === "ec-p256" ? 256 : 384;
  // The certificate carries the new key; the CSR's own key still identifies a held request, so a
  // client polling with the same CSR finds it again.
  const withKey: ParsedCsr = { ...csr, spki: key.spki, keyId: keyIdentifier(key.spki), keyType, keyBits, spkiSha256: csr.spkiSha256 };
  const result = await ra.decide("serverkeygen", name, profile, identity, withKey);
  if (result.kind !== "issued") return { result };
  return { result, key, encryptFor };
}
