import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { OID } from "./oids.ts";

/**
 * A certificate that goes into a SignedData as the DER it came as. pkijs would otherwise check it
 * against the full X.509 schema, build its objects and parse its TBS again just to write the
 * same bytes back: on the enrollment path that cost more than signing the certificate.
 */
class VerbatimCertificate extends pkijs.Certificate {
  constructor(private readonly der: Uint8Array) {
    super();
  }
  override toSchema(): asn1js.Sequence {
    const asn = asn1js.fromBER(this.der);
    if (asn.offset === -1 || asn.offset !== this.der.length) throw new Error("certificate DER is malformed");
    return asn.result as asn1js.Sequence;
  }
}

/**
 * A degenerate ("certs-only") CMS SignedData (RFC 5652 / RFC 7030 4.1.3): version 1, id-data
 * with no content, the certificates, no signers. Strict parsers (strongSwan) accept this form.
 */
export function certsOnly(certs: Uint8Array[]): Buffer {
  const sd = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    certificates: certs.map((der) => new VerbatimCertificate(new Uint8Array(der))),
    digestAlgorithms: [],
    signerInfos: [],
  });
  const ci = new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) });
  return Buffer.from(ci.toSchema().toBER());
}

/** The certificates of a CMS SignedData (certs-only or signed), DER each. */
export function certsOf(cmsDer: Uint8Array): Buffer[] {
  const ci = pkijs.ContentInfo.fromBER(new Uint8Array(cmsDer));
  const sd = new pkijs.SignedData({ schema: ci.content });
  return (sd.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate).map((c) => Buffer.from(c.toSchema().toBER()));
}

