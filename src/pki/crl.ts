import "reflect-metadata";
import * as asn1js from "asn1js";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { CRLReason, Extension, id_ce_cRLReasons } from "@peculiar/asn1-x509";
import { encodeDer, rawDer } from "./der.ts";
import { serialInteger, timeDer } from "./certificate.ts";

/**
 * One revokedCertificates entry of a CRL (RFC 5280 5.1.2.6). An entry never changes once made,
 * so callers cache its DER: a CRL of tens of thousands of entries is then re-signed by
 * concatenation, not re-encoded.
 */
export function encodeCrlEntry(serialHex: string, revokedAt: Date, reasonCode?: number): Buffer {
  const value: asn1js.BaseBlock[] = [serialInteger(serialHex), rawDer(timeDer(revokedAt))];
  if (reasonCode !== undefined) {
    const reason = new Extension({ extnID: id_ce_cRLReasons, critical: false, extnValue: new OctetString(AsnConvert.serialize(new CRLReason(reasonCode))) });
    value.push(new asn1js.Sequence({ value: [rawDer(AsnConvert.serialize(reason))] }));
  }
  return encodeDer(new asn1js.Sequence({ value }));
}

export interface TbsCertListParts {
  signatureAlgorithmDer: Uint8Array;
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  /** DER of each entry (encodeCrlEntry). */
  entriesDer: Uint8Array[];
  /** DER of each crlExtension. */
  extensionsDer: Uint8Array[];
}

/** A v2 TBSCertList (RFC 5280 5.1.2); with no entries the revokedCertificates field is absent, as 5.1.2.6 requires. */
export function encodeTbsCertList(p: TbsCertListParts): Buffer {
  const value: asn1js.BaseBlock[] = [
    new asn1js.Integer({ value: 1 }),
    rawDer(p.signatureAlgorithmDer),
    rawDer(p.issuerDer),
    rawDer(timeDer(p.thisUpdate)),
    rawDer(timeDer(p.nextUpdate)),
  ];
  if (p.entriesDer.length) value.push(new asn1js.Sequence({ value: p.entriesDer.map(rawDer) }));
  if (p.extensionsDer.length) {
    value.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Sequence({ value: p.extensionsDer.map(rawDer) })] }));
  }
  return encodeDer(new asn1js.Sequence({ value }));
}
