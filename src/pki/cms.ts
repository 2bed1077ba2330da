import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { OID } from "./oids.ts";
import { encodeDer, rawDer } from "./der.ts";

/**
 * A degenerate ("certs-only") CMS SignedData (RFC 5652 / RFC 7030 4.1.3): version 1, id-data
 * with no content, the certificates, no signers. Strict parsers (strongSwan) accept this form.
 * Each certificate is embedded as the DER it came as, unchecked: every caller passes a
 * certificate this CA just encoded or loaded (and parsed) from its store. Parsing it again,
 * or re-encoding it through pkijs, cost more than signing it.
 */
export function certsOnly(certs: Uint8Array[]): Buffer {
  const explicit = (tagNumber: number, value: asn1js.BaseBlock[]) => new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });
  const signedData = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Set({ value: [] }),
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.data })] }),
      explicit(0, certs.map(rawDer)),
      new asn1js.Set({ value: [] }),
    ],
  });
  return encodeDer(new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.signedData }), explicit(0, [signedData])] }));
}

/** The certificates of a CMS SignedData (certs-only or signed), DER each. */
export function certsOf(cmsDer: Uint8Array): Buffer[] {
  const ci = pkijs.ContentInfo.fromBER(new Uint8Array(cmsDer));
  const sd = new pkijs.SignedData({ schema: ci.content });
  return (sd.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate).map((c) => Buffer.from(c.toSchema().toBER()));
}

