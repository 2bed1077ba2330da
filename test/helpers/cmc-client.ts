// The client side of /fullcmc for the tests: a Full PKI Request built with pkijs and asn1js.
import { createHash, webcrypto } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

/** A Full PKI Request: PKIData with one PKCS#10 TaggedRequest, in a SignedData signed by the CSR's key. */
export async function fullCmcRequest(csr: { der: Buffer; keys: CryptoKeyPair }, opts: { bodyPartId?: number; crmf?: boolean; unsigned?: boolean } = {}): Promise<Buffer> {
  const csrAsn = asn1js.fromBER(new Uint8Array(csr.der)).result;
  const tagged = opts.crmf
    ? new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: [new asn1js.Sequence({ value: [] })] })
    : new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Integer({ value: opts.bodyPartId ?? 1 }), csrAsn] });
  const pkiData = new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [] }), new asn1js.Sequence({ value: [tagged] }), new asn1js.Sequence({ value: [] }), new asn1js.Sequence({ value: [] })] }).toBER();
  const spki = await webcrypto.subtle.exportKey("spki", csr.keys.publicKey);
  const pub = pkijs.PublicKeyInfo.fromBER(spki);
  const ski = createHash("sha1").update(pub.subjectPublicKey.valueBlock.valueHexView).digest();
  const sd = new pkijs.SignedData({
    version: 3,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: "1.3.6.1.5.5.7.12.2", eContent: new asn1js.OctetString({ valueHex: pkiData }) }),
    signerInfos: opts.unsigned
      ? []
      : [
          new pkijs.SignerInfo({
            version: 3,
            sid: new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: ski }),
            signedAttrs: new pkijs.SignedAndUnsignedAttributes({
              type: 0,
              attributes: [
                new pkijs.Attribute({ type: "1.2.840.113549.1.9.3", values: [new asn1js.ObjectIdentifier({ value: "1.3.6.1.5.5.7.12.2" })] }),
                new pkijs.Attribute({ type: "1.2.840.113549.1.9.4", values: [new asn1js.OctetString({ valueHex: createHash("sha256").update(Buffer.from(pkiData)).digest() })] }),
              ],
            }),
          }),
        ],
  });
  if (!opts.unsigned) await sd.sign(csr.keys.privateKey, 0, "SHA-256");
  return Buffer.from(new pkijs.ContentInfo({ contentType: "1.2.840.113549.1.7.2", content: sd.toSchema(true) }).toSchema().toBER());
}
