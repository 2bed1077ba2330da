import { createHash } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { OID } from "./oids.ts";

export interface CmsSigner {
  /** DER of the signer's certificate; it is also put in the certificates field. */
  certDer: Uint8Array;
  /** A CryptoKey, or a token key that the engine knows how to use. */
  key: CryptoKey;
  /** WebCrypto hash name, e.g. "SHA-256". */
  hash: string;
  engine: pkijs.ICryptoEngine;
}

const NODE_HASH: Record<string, string> = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

/**
 * A CMS SignedData (RFC 5652) over `eContent` of type `eContentType`. Signed attributes are
 * always present: they are mandatory whenever the content is not id-data, which is the case for
 * every EST use (PKIResponse, EnvelopedData).
 */
export async function signedData(p: { eContentType: string; eContent: Uint8Array; signer: CmsSigner; certificates?: Uint8Array[] }): Promise<Buffer> {
  const signerCert = pkijs.Certificate.fromBER(new Uint8Array(p.signer.certDer));
  const digest = createHash(NODE_HASH[p.signer.hash] ?? "sha256").update(p.eContent).digest();
  const signedAttrs = new pkijs.SignedAndUnsignedAttributes({
    type: 0,
    attributes: [
      new pkijs.Attribute({ type: OID.contentType, values: [new asn1js.ObjectIdentifier({ value: p.eContentType })] }),
      new pkijs.Attribute({ type: OID.signingTime, values: [new asn1js.UTCTime({ valueDate: new Date() })] }),
      new pkijs.Attribute({ type: OID.messageDigest, values: [new asn1js.OctetString({ valueHex: new Uint8Array(digest) })] }),
    ],
  });
  const certs = [...(p.certificates ?? []), p.signer.certDer].map((d) => pkijs.Certificate.fromBER(new Uint8Array(d)));
  const sd = new pkijs.SignedData({
    version: 3,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: p.eContentType, eContent: new asn1js.OctetString({ valueHex: new Uint8Array(p.eContent) }) }),
    certificates: certs,
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: signerCert.issuer, serialNumber: signerCert.serialNumber }),
        signedAttrs,
      }),
    ],
  });
  await sd.sign(p.signer.key, 0, p.signer.hash, undefined, p.signer.engine);
  const ci = new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) });
  return Buffer.from(ci.toSchema().toBER());
}
