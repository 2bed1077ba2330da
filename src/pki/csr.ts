import "reflect-metadata";
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";
import * as asn1js from "asn1js";
import * as x509 from "@peculiar/x509";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { AlgorithmIdentifier, Extensions, GeneralNames } from "@peculiar/asn1-x509";
import { RsaSaPssParams } from "@peculiar/asn1-rsa";
import { badRequest } from "../errors.ts";
import { OID } from "./oids.ts";
import { decodeBase64Strict } from "./encoding.ts";
import { encodeDer, rawDer } from "./der.ts";
import { keyIdFromKeyBits } from "./certificate.ts";
import { type GeneralNameEntry, sanFromGeneralNames } from "./names.ts";

export type CsrKeyType = "rsa" | "ec-p256" | "ec-p384" | "ed25519";

export interface CsrAttribute {
  type: string;
  /** DER of each value, as the request carries it. */
  valuesDer: Buffer[];
}

export interface ParsedCsr {
  der: Buffer;
  /** RFC 4514 string, e.g. "CN=device-1, O=Example". */
  subject: string;
  /** The subject as DER, re-encoded from what was parsed: what the certificate will carry. */
  subjectDer: Buffer;
  /** Short attribute names (CN, O, ...) or dotted OIDs, with values, in order. */
  subjectAttributes: { type: string; value: string }[];
  commonName: string | null;
  spki: Buffer;
  spkiSha256: string;
  /** RFC 5280 4.2.1.2 method 1 key identifier of the request's key, hex. */
  keyId: string;
  publicKey: KeyObject;
  keyType: CsrKeyType;
  keyBits: number;
  sans: GeneralNameEntry[];
  challengePassword: string | null;
  attributes: CsrAttribute[];
  signatureAlgorithm: string;
  /** DER of the signature AlgorithmIdentifier, parameters included. */
  signatureAlgorithmDer: Buffer;
  /** The exact signed bytes and signature, for proof of possession. */
  tbs: Buffer;
  signature: Buffer;
}

function directoryString(der: Buffer): string {
  const asn = asn1js.fromBER(new Uint8Array(der));
  const block = (asn.result as { valueBlock?: { value?: unknown } }).valueBlock;
  if (asn.offset !== -1 && block && typeof block.value === "string") return block.value;
  throw badRequest("CSR attribute value is not a string");
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/**
 * Parses a DER PKCS#10 request. Every way it can be malformed ends in a 400 that says where.
 *
 * This runs once per enrollment, so it parses once, with @peculiar/asn1-schema (the typed
 * layer under @peculiar/x509), and derives everything else from that one parse: pkijs's schema
 * comparison and the re-parses it led to cost ten times as much (docs/PERFORMANCE.md).
 */
export function parseCsr(der: Buffer): ParsedCsr {
  let req: CertificationRequest;
  let signatureAlgorithmDer: Buffer;
  try {
    req = AsnConvert.parse(der, CertificationRequest);
    if (!req.certificationRequestInfoRaw) throw new Error("no certificationRequestInfo");
    signatureAlgorithmDer = Buffer.from(AsnConvert.serialize(req.signatureAlgorithm));
    // The signature covers only the certificationRequestInfo. Everything around it (the outer
    // length, the algorithm, the BIT STRING and its unused-bits count, trailing bytes) must be
    // exactly the DER of what was parsed, or a request with a lying outer length, unused
    // signature bits or junk after it would pass as well-formed.
    const outer = encodeDer(new asn1js.Sequence({ value: [rawDer(req.certificationRequestInfoRaw), rawDer(signatureAlgorithmDer), new asn1js.BitString({ valueHex: req.signature })] }));
    if (!outer.equals(der)) {
      throw new Error(der.length > outer.length && der.subarray(0, outer.length).equals(outer) ? `${der.length - outer.length} bytes of trailing data after the request` : "its outer SEQUENCE, signature algorithm or signature BIT STRING is not DER (wrong length or unused bits)");
    }
  } catch (e) {
    throw badRequest(`body is not a PKCS#10 certification request: ${firstLine(e)}`);
  }
  return describe(der, req, signatureAlgorithmDer);
}

function describe(der: Buffer, req: CertificationRequest, signatureAlgorithmDer: Buffer): ParsedCsr {
  const info = req.certificationRequestInfo;
  let spki: Buffer;
  let publicKey: KeyObject;
  try {
    spki = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
    publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (e) {
    throw badRequest(`CSR public key is not usable: ${firstLine(e)}`);
  }
  const { keyType, keyBits } = classifyKey(publicKey);

  let subject: string;
  let subjectDer: Buffer;
  let subjectAttributes: { type: string; value: string }[];
  try {
    const name = new x509.Name(info.subject);
    subject = name.toString();
    subjectDer = Buffer.from(name.toArrayBuffer());
    subjectAttributes = name.toJSON().flatMap((rdn) => Object.entries(rdn).flatMap(([type, vals]) => vals.map((value) => ({ type, value: String(value) }))));
  } catch (e) {
    throw badRequest(`CSR subject is malformed: ${firstLine(e)}`);
  }
  const cn = subjectAttributes.find((a) => a.type === "CN");

  const attributes: CsrAttribute[] = info.attributes.map((a) => ({ type: a.type, valuesDer: a.values.map((v) => Buffer.from(v)) }));
  let challengePassword: string | null = null;
  let sans: GeneralNameEntry[] = [];
  for (const a of attributes) {
    if (a.type === OID.challengePassword) {
      if (a.valuesDer.length !== 1) throw badRequest("CSR challengePassword attribute must have exactly one value");
      challengePassword = directoryString(a.valuesDer[0]);
    } else if (a.type === OID.extensionRequest) {
      let exts: Extensions;
      try {
        if (a.valuesDer.length !== 1) throw new Error("it must have exactly one value");
        exts = AsnConvert.parse(a.valuesDer[0], Extensions);
      } catch (e) {
        throw badRequest(`CSR extensionRequest is malformed: ${firstLine(e)}`);
      }
      for (const ext of exts) {
        if (ext.extnID === OID.subjectAltName) {
          try {
            sans = sanFromGeneralNames(AsnConvert.parse(ext.extnValue.buffer, GeneralNames));
          } catch (e) {
            throw badRequest(`subjectAltName extension is malformed: ${firstLine(e)}`);
          }
        }
      }
    }
  }

  return {
    der,
    subject,
    subjectDer,
    subjectAttributes,
    commonName: cn ? cn.value : null,
    spki,
    spkiSha256: createHash("sha256").update(spki).digest("hex"),
    keyId: keyIdFromKeyBits(info.subjectPKInfo.subjectPublicKey),
    publicKey,
    keyType,
    keyBits,
    sans,
    challengePassword,
    attributes,
    signatureAlgorithm: req.signatureAlgorithm.algorithm,
    signatureAlgorithmDer,
    tbs: Buffer.from(req.certificationRequestInfoRaw!),
    signature: Buffer.from(req.signature),
  };
}

/** Parse, then proof of possession: what every enrollment needs before policy looks at it. */
export function parseAndVerifyCsr(der: Buffer): ParsedCsr {
  const csr = parseCsr(der);
  verifyCsrSignature(csr);
  return csr;
}

export function classifyKey(k: KeyObject): { keyType: CsrKeyType; keyBits: number } {
  const d = k.asymmetricKeyDetails ?? {};
  switch (k.asymmetricKeyType) {
    case "rsa":
      return { keyType: "rsa", keyBits: d.modulusLength ?? 0 };
    case "ec":
      if (d.namedCurve === "prime256v1") return { keyType: "ec-p256", keyBits: 256 };
      if (d.namedCurve === "secp384r1") return { keyType: "ec-p384", keyBits: 384 };
      throw badRequest(`CSR uses the EC curve ${d.namedCurve ?? "unknown"}; only P-256 and P-384 are accepted`);
    case "ed25519":
      return { keyType: "ed25519", keyBits: 256 };
    default:
      throw badRequest(`CSR key type ${k.asymmetricKeyType ?? "unknown"} is not accepted (RSA, ECDSA P-256/P-384 or Ed25519)`);
  }
}

const SIG_HASH: Record<string, string | null> = {
  [OID.ecdsaWithSHA256]: "sha256",
  [OID.ecdsaWithSHA384]: "sha384",
  [OID.ecdsaWithSHA512]: "sha512",
  [OID.sha256WithRSA]: "sha256",
  [OID.sha384WithRSA]: "sha384",
  [OID.sha512WithRSA]: "sha512",
  [OID.ed25519]: null,
};

/**
 * Proof of possession: the CSR must be signed by the key it carries. SHA-1 signatures are
 * refused because a collision would let someone bind another's key.
 */
export function verifyCsrSignature(csr: ParsedCsr): void {
  const alg = csr.signatureAlgorithm;
  if (alg === OID.sha1WithRSA || alg === OID.ecdsaWithSHA1) {
    throw badRequest("CSR is signed with SHA-1, which is not accepted: sign it with SHA-256 or stronger");
  }
  let ok: boolean;
  try {
    if (alg === OID.rsassaPss) {
      ok = nodeVerify(pssHash(csr), csr.tbs, { key: csr.publicKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -2 /* auto */ }, csr.signature);
    } else if (alg in SIG_HASH) {
      const keyIsEc = csr.keyType.startsWith("ec-");
      const algIsEc = alg.startsWith("1.2.840.10045.4.");
      if ((csr.keyType === "ed25519") !== (alg === OID.ed25519) || (csr.keyType === "rsa" && algIsEc) || (keyIsEc && !algIsEc)) {
        throw badRequest(`CSR signature algorithm ${alg} does not match its ${csr.keyType} key`);
      }
      ok = nodeVerify(SIG_HASH[alg], csr.tbs, csr.publicKey, csr.signature);
    } else {
      throw badRequest(`CSR signature algorithm ${alg} is not supported`);
    }
  } catch (e) {
    if (e instanceof Error && e.name === "EstcaError") throw e;
    ok = false;
  }
  if (!ok) throw badRequest("CSR signature does not verify: proof of possession failed");
}

function pssHash(csr: ParsedCsr): string {
  // RSASSA-PSS parameters name the hash; a PSS request without them means SHA-1, which we refuse.
  const params = AsnConvert.parse(csr.signatureAlgorithmDer, AlgorithmIdentifier).parameters;
  if (!params) throw badRequest("RSASSA-PSS CSR without parameters implies SHA-1, which is not accepted");
  const h = AsnConvert.parse(params, RsaSaPssParams).hashAlgorithm.algorithm;
  const name = h === OID.sha256 ? "sha256" : h === OID.sha384 ? "sha384" : h === OID.sha512 ? "sha512" : null;
  if (!name) throw badRequest(`RSASSA-PSS CSR hash ${h} is not accepted`);
  return name;
}

/** Reads a CSR from PEM or DER bytes, as `estca issue` receives it. */
export function csrDerFromFile(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1");
  if (text.includes("-----BEGIN")) {
    const m = text.match(/-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/);
    if (!m) throw badRequest("the file has PEM armour but no CERTIFICATE REQUEST block");
    return decodeBase64Strict(m[2], "PEM certificate request");
  }
  return bytes;
}
