import "reflect-metadata";
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import * as x509 from "@peculiar/x509";
import { badRequest } from "../errors.ts";
import { OID } from "./oids.ts";
import { decodeBase64Strict } from "./encoding.ts";
import { type GeneralNameEntry, sanFromExtensionDer } from "./names.ts";

export type CsrKeyType = "rsa" | "ec-p256" | "ec-p384" | "ed25519";

export interface CsrAttribute {
  type: string;
  values: asn1js.AsnType[];
}

export interface ParsedCsr {
  der: Buffer;
  /** RFC 4514 string, e.g. "CN=device-1, O=Example". */
  subject: string;
  subjectDer: Buffer;
  /** Short attribute names (CN, O, ...) or dotted OIDs, with values, in order. */
  subjectAttributes: { type: string; value: string }[];
  commonName: string | null;
  spki: Buffer;
  spkiSha256: string;
  publicKey: KeyObject;
  keyType: CsrKeyType;
  keyBits: number;
  sans: GeneralNameEntry[];
  /** Requested extensions by OID, DER of each Extension. */
  requestedExtensions: Map<string, Buffer>;
  challengePassword: string | null;
  attributes: CsrAttribute[];
  signatureAlgorithm: string;
  /** The exact signed bytes and signature, for proof of possession. */
  tbs: Buffer;
  signature: Buffer;
}

function directoryString(v: asn1js.AsnType): string {
  const block = (v as { valueBlock?: { value?: unknown } }).valueBlock;
  if (block && typeof block.value === "string") return block.value;
  throw badRequest("CSR attribute value is not a string");
}

/**
 * Parses a DER PKCS#10 request. Every way it can be malformed ends in a 400 that says where.
 */
export function parseCsr(der: Buffer): ParsedCsr {
  let req: pkijs.CertificationRequest;
  try {
    const asn = asn1js.fromBER(new Uint8Array(der));
    if (asn.offset === -1) throw new Error(asn.result.error || "invalid BER");
    if (asn.offset !== der.length) throw new Error(`${der.length - asn.offset} bytes of trailing data after the request`);
    assertLengthsAgree(asn.result);
    req = new pkijs.CertificationRequest({ schema: asn.result });
    // The signature is a whole number of bytes; a non-zero count of unused bits is not DER.
    if (req.signatureValue.valueBlock.unusedBits !== 0) throw new Error("the signature BIT STRING declares unused bits");
  } catch (e) {
    throw badRequest(`body is not a PKCS#10 certification request: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
  }
  return describe(der, req);
}

/**
 * asn1js reads a constructed value's children past the length the value declares. The signature
 * does not cover the outer SEQUENCE, so without this check a request with a wrong outer length
 * would be accepted as if it were well-formed.
 */
function assertLengthsAgree(block: asn1js.AsnType, depth = 0): void {
  const b = block as unknown as { lenBlock?: { isIndefiniteForm: boolean; length: number }; valueBlock?: { blockLength: number; value?: unknown }; idBlock?: { isConstructed: boolean } };
  if (!b.idBlock?.isConstructed || !b.lenBlock || !b.valueBlock) return;
  if (!b.lenBlock.isIndefiniteForm && b.lenBlock.length !== b.valueBlock.blockLength) {
    throw new Error(`a constructed value declares ${b.lenBlock.length} bytes but holds ${b.valueBlock.blockLength}`);
  }
  if (Array.isArray(b.valueBlock.value) && depth < 32) for (const c of b.valueBlock.value) assertLengthsAgree(c as asn1js.AsnType, depth + 1);
}

function describe(der: Buffer, req: pkijs.CertificationRequest): ParsedCsr {
  const spki = Buffer.from(req.subjectPublicKeyInfo.toSchema().toBER());
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (e) {
    throw badRequest(`CSR public key is not usable: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { keyType, keyBits } = classifyKey(publicKey);

  const subjectDer = Buffer.from(req.subject.toSchema().toBER());
  let subject: string;
  let subjectAttributes: { type: string; value: string }[];
  try {
    const name = new x509.Name(new Uint8Array(subjectDer));
    subject = name.toString();
    subjectAttributes = name.toJSON().flatMap((rdn) => Object.entries(rdn).flatMap(([type, vals]) => vals.map((value) => ({ type, value: String(value) }))));
  } catch (e) {
    throw badRequest(`CSR subject is malformed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const cn = subjectAttributes.find((a) => a.type === "CN");

  const attributes: CsrAttribute[] = (req.attributes ?? []).map((a) => ({ type: a.type, values: a.values }));
  let challengePassword: string | null = null;
  const requestedExtensions = new Map<string, Buffer>();
  let sans: GeneralNameEntry[] = [];
  for (const a of attributes) {
    if (a.type === OID.challengePassword) {
      if (a.values.length !== 1) throw badRequest("CSR challengePassword attribute must have exactly one value");
      challengePassword = directoryString(a.values[0]);
    } else if (a.type === OID.extensionRequest) {
      let exts: pkijs.Extensions;
      try {
        exts = new pkijs.Extensions({ schema: a.values[0] });
      } catch (e) {
        throw badRequest(`CSR extensionRequest is malformed: ${e instanceof Error ? e.message : String(e)}`);
      }
      for (const ext of exts.extensions) {
        const extDer = Buffer.from(ext.toSchema().toBER());
        requestedExtensions.set(ext.extnID, extDer);
        if (ext.extnID === OID.subjectAltName) sans = sanFromExtensionDer(extDer);
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
    publicKey,
    keyType,
    keyBits,
    sans,
    requestedExtensions,
    challengePassword,
    attributes,
    signatureAlgorithm: req.signatureAlgorithm.algorithmId,
    tbs: Buffer.from(req.tbsView),
    signature: Buffer.from(req.signatureValue.valueBlock.valueHexView),
  };
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
  const asn = asn1js.fromBER(new Uint8Array(csr.der));
  const req = new pkijs.CertificationRequest({ schema: asn.result });
  const params = req.signatureAlgorithm.algorithmParams;
  if (!params) throw badRequest("RSASSA-PSS CSR without parameters implies SHA-1, which is not accepted");
  const p = new pkijs.RSASSAPSSParams({ schema: params });
  const h = p.hashAlgorithm.algorithmId;
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
