import "reflect-metadata";
import { createHash } from "node:crypto";
import * as asn1js from "asn1js";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  Extension,
  GeneralName,
  Time,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  Validity,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
} from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import { encodeDer, rawDer } from "./der.ts";
import { OID } from "./oids.ts";
import type { GeneralNameEntry } from "./names.ts";

/**
 * The parts of an RFC 5280 TBSCertificate. Everything that is already DER (names, key,
 * extensions) is embedded as it is: a certificate is assembled, not re-encoded, which is what
 * makes issuance cheap enough for a factory line (docs/PERFORMANCE.md).
 */
export interface TbsParts {
  /** Positive serial number, hex. */
  serialHex: string;
  signatureAlgorithmDer: Uint8Array;
  issuerDer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  subjectDer: Uint8Array;
  spkiDer: Uint8Array;
  /** DER of each Extension, in order. */
  extensionsDer: Uint8Array[];
}

export function encodeTbsCertificate(p: TbsParts): Buffer {
  const value: asn1js.BaseBlock[] = [
    new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Integer({ value: 2 })] }),
    serialInteger(p.serialHex),
    rawDer(p.signatureAlgorithmDer),
    rawDer(p.issuerDer),
    rawDer(AsnConvert.serialize(new Validity({ notBefore: p.notBefore, notAfter: p.notAfter }))),
    rawDer(p.subjectDer),
    rawDer(p.spkiDer),
  ];
  if (p.extensionsDer.length) {
    value.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 3 }, value: [new asn1js.Sequence({ value: p.extensionsDer.map(rawDer) })] }));
  }
  return encodeDer(new asn1js.Sequence({ value }));
}

/** X.509 times hold whole seconds: a date with milliseconds would be rounded differently by readers. */
export function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value, hex. */
export function keyIdFromKeyBits(subjectPublicKey: ArrayBuffer | Uint8Array): string {
  return createHash("sha1").update(new Uint8Array(subjectPublicKey)).digest("hex");
}

/** The method-1 key identifier of a DER SubjectPublicKeyInfo. */
export function keyIdentifier(spki: Uint8Array): string {
  return keyIdFromKeyBits(AsnConvert.parse(spki, SubjectPublicKeyInfo).subjectPublicKey);
}

/** A positive INTEGER from a hex serial number, whatever its length or leading zeros. */
export function serialInteger(serialHex: string): asn1js.Integer {
  return asn1js.Integer.fromBigInt(BigInt(`0x${serialHex}`));
}

/** Time as RFC 5280 4.1.2.5 wants it: UTCTime through 2049, GeneralizedTime after, whole seconds. */
export function timeDer(d: Date): Buffer {
  return Buffer.from(AsnConvert.serialize(new Time(d)));
}

/**
 * A signed Certificate or CertificateList (they share this outer shape) from its TBS, the
 * algorithm that signed it and the DER signature.
 */
export function encodeSigned(tbsDer: Uint8Array, signatureAlgorithmDer: Uint8Array, signatureDer: Uint8Array): Buffer {
  return encodeDer(new asn1js.Sequence({ value: [rawDer(tbsDer), rawDer(signatureAlgorithmDer), new asn1js.BitString({ valueHex: signatureDer })] }));
}

const SIGNATURE_OIDS: Record<string, string> = {
  "ECDSA SHA-256": OID.ecdsaWithSHA256,
  "ECDSA SHA-384": OID.ecdsaWithSHA384,
  "ECDSA SHA-512": OID.ecdsaWithSHA512,
  "RSA SHA-256": OID.sha256WithRSA,
  "RSA SHA-384": OID.sha384WithRSA,
  "RSA SHA-512": OID.sha512WithRSA,
};

/** The AlgorithmIdentifier of a signature: ECDSA without parameters, RSA PKCS#1 v1.5 with NULL (RFC 5758, RFC 4055). */
export function signatureAlgorithmDer(family: "ECDSA" | "RSA", hash: string): Buffer {
  const oid = SIGNATURE_OIDS[`${family} ${hash}`];
  if (!oid) throw new Error(`no signature algorithm for ${family} with ${hash}`);
  return Buffer.from(AsnConvert.serialize(new AlgorithmIdentifier({ algorithm: oid, parameters: family === "RSA" ? new asn1js.Null().toBER() : undefined })));
}

/** An ECDSA signature as X.509 and CMS carry it (ECDSA-Sig-Value), from PKCS#11's raw r||s. */
export function ecdsaSignatureDer(rawRs: Uint8Array, namedCurve: "P-256" | "P-384"): Buffer {
  const der = ecFormatter.toAsnSignature({ name: "ECDSA", namedCurve } as EcKeyAlgorithm, new Uint8Array(rawRs));
  if (!der) throw new Error(`cannot encode an ECDSA ${namedCurve} signature of ${rawRs.length} bytes`);
  return Buffer.from(der);
}
const ecFormatter = new x509.AsnEcSignatureFormatter();

/** subjectKeyIdentifier extension (RFC 5280 4.2.1.2) for a key identifier in hex. */
export function subjectKeyIdentifierDer(keyIdHex: string): Buffer {
  const value = AsnConvert.serialize(new SubjectKeyIdentifier(new Uint8Array(Buffer.from(keyIdHex, "hex")).buffer));
  return Buffer.from(AsnConvert.serialize(new Extension({ extnID: id_ce_subjectKeyIdentifier, critical: false, extnValue: new OctetString(value) })));
}

/** subjectAltName extension of typed entries; "other" entries are never certified. */
export function subjectAltNameDer(sans: GeneralNameEntry[], critical: boolean): Buffer {
  const names = sans.flatMap((s) => {
    switch (s.type) {
      case "dns":
        return [new GeneralName({ dNSName: s.value })];
      case "ip":
        return [new GeneralName({ iPAddress: s.value })];
      case "email":
        return [new GeneralName({ rfc822Name: s.value })];
      case "uri":
        return [new GeneralName({ uniformResourceIdentifier: s.value })];
      default:
        return [];
    }
  });
  const value = AsnConvert.serialize(new SubjectAlternativeName(names));
  return Buffer.from(AsnConvert.serialize(new Extension({ extnID: id_ce_subjectAltName, critical, extnValue: new OctetString(value) })));
}
