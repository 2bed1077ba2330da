import { generateKeyPair as nodeGenerateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { OID } from "./oids.ts";

const generateKeyPair = promisify(nodeGenerateKeyPair);

export type ServerKeyType = "rsa-2048" | "rsa-3072" | "rsa-4096" | "ec-p256" | "ec-p384";

export interface GeneratedKey {
  type: ServerKeyType;
  spki: Buffer;
  /** PKCS#8 PrivateKeyInfo (RFC 5208 / OneAsymmetricKey v1 of RFC 5958). Held in memory only. */
  pkcs8: Buffer;
}

/** A fresh key pair for /serverkeygen (RFC 7030 4.4). The caller must never store or log `pkcs8`. */
export async function generateServerKey(type: ServerKeyType): Promise<GeneratedKey> {
  const enc = { publicKeyEncoding: { type: "spki", format: "der" }, privateKeyEncoding: { type: "pkcs8", format: "der" } } as const;
  const pair = (type.startsWith("rsa-")
    ? await generateKeyPair("rsa", { modulusLength: Number(type.slice(4)), publicExponent: 65537, ...enc })
    : await generateKeyPair("ec", { namedCurve: type === "ec-p256" ? "P-256" : "P-384", ...enc })) as unknown as { publicKey: Buffer; privateKey: Buffer };
  return { type, spki: pair.publicKey, pkcs8: pair.privateKey };
}

/**
 * RFC 7030 4.4.2: the key travels as an AsymmetricKeyPackage (RFC 5958, a SEQUENCE OF
 * OneAsymmetricKey) inside an EnvelopedData for the recipient's certificate: RSA-OAEP key
 * transport for RSA recipients, ECDH key agreement for EC ones; AES-256-CBC for the content,
 * which every OpenSSL `cms -decrypt` opens.
 */
export async function envelopeKey(pkcs8: Uint8Array, recipientCertDer: Uint8Array): Promise<Buffer> {
  const keyInfo = asn1js.fromBER(new Uint8Array(pkcs8));
  if (keyInfo.offset === -1) throw new Error("generated PKCS#8 does not parse");
  const keyPackage = new asn1js.Sequence({ value: [keyInfo.result] }).toBER();
  const env = new pkijs.EnvelopedData();
  env.addRecipientByCertificate(pkijs.Certificate.fromBER(new Uint8Array(recipientCertDer)), { oaepHashAlgorithm: "SHA-256", kdfAlgorithm: "SHA-256" });
  await env.encrypt({ name: "AES-CBC", length: 256 } as Algorithm, keyPackage);
  env.encryptedContentInfo.contentType = OID.aKeyPackage;
  // The bare EnvelopedData: it becomes the eContent of a SignedData whose eContentType says what it is.
  return Buffer.from(env.toSchema().toBER());
}
