import { createHash, createPublicKey, verify as nodeVerify } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { OID } from "./oids.ts";

/** CMCFailInfo (RFC 5272 6.1.4). */
export const CMC_FAIL = {
  badAlg: 0,
  badMessageCheck: 1,
  badRequest: 2,
  badTime: 3,
  badCertId: 4,
  unsupportedExt: 5,
  mustArchiveKeys: 6,
  badIdentity: 7,
  popRequired: 8,
  popFailed: 9,
  noKeyReuse: 10,
  internalCAError: 11,
  tryLater: 12,
  authDataFail: 13,
} as const;
export type CmcFailName = keyof typeof CMC_FAIL;

/** CMCStatus (RFC 5272 6.1.1). */
export const CMC_STATUS = { success: 0, failed: 2, pending: 3, noSupport: 4 } as const;

/** A request the server cannot serve, with the CMCFailInfo that says why. */
export class CmcFailure extends Error {
  constructor(
    readonly failInfo: CmcFailName,
    message: string,
    readonly bodyPartIds: number[] = [],
  ) {
    super(message);
    this.name = "CmcFailure";
  }
}

export interface FullCmcRequest {
  /** bodyPartID of the PKCS#10 TaggedRequest. */
  bodyPartId: number;
  csrDer: Buffer;
  /** Whether the PKIData was signed, and by the key in the PKCS#10 (RFC 5272 3.2.1.3.1). */
  signedByCsrKey: boolean;
}

function parseDer(der: Uint8Array, what: string): asn1js.AsnType {
  const asn = asn1js.fromBER(new Uint8Array(der));
  if (asn.offset === -1) throw new CmcFailure("badRequest", `${what} is not valid DER: ${asn.result.error}`);
  return asn.result;
}

function isContext(b: asn1js.AsnType, tag: number): boolean {
  return b.idBlock.tagClass === 3 && b.idBlock.tagNumber === tag;
}

function seqItems(b: asn1js.AsnType | undefined, what: string): asn1js.AsnType[] {
  if (!(b instanceof asn1js.Sequence)) throw new CmcFailure("badRequest", `${what} is not a SEQUENCE`);
  return b.valueBlock.value;
}

/**
 * Reads a Full PKI Request (RFC 5272 3.2): a ContentInfo with a SignedData whose content is a
 * PKIData carrying one PKCS#10 TaggedRequest. CRMF requests are refused as unsupported.
 */
export function parseFullCmcRequest(der: Buffer): FullCmcRequest {
  let sd: pkijs.SignedData;
  try {
    const ci = new pkijs.ContentInfo({ schema: parseDer(der, "the CMC request") });
    if (ci.contentType !== OID.signedData) throw new CmcFailure("badRequest", `the CMC request is a CMS ${ci.contentType}, not SignedData`);
    sd = new pkijs.SignedData({ schema: ci.content });
  } catch (e) {
    if (e instanceof CmcFailure) throw e;
    throw new CmcFailure("badRequest", `the CMC request is not a CMS ContentInfo with SignedData: ${(e as Error).message.split("\n")[0]}`);
  }
  const eci = sd.encapContentInfo;
  if (eci.eContentType !== OID.ctPkiData) throw new CmcFailure("badRequest", `the SignedData carries ${eci.eContentType}, not a PKIData (${OID.ctPkiData})`);
  if (!eci.eContent) throw new CmcFailure("badRequest", "the SignedData has no PKIData content");
  const pkiDataDer = new Uint8Array(eci.eContent.getValue());
  const [controls, reqs] = seqItems(parseDer(pkiDataDer, "PKIData"), "PKIData");
  seqItems(controls, "PKIData.controlSequence");
  const requests = seqItems(reqs, "PKIData.reqSequence");
  if (requests.length === 0) throw new CmcFailure("badRequest", "PKIData.reqSequence is empty: there is nothing to certify");
  if (requests.length > 1) throw new CmcFailure("badRequest", `PKIData carries ${requests.length} requests; estca serves one per message`);
  const tr = requests[0];
  if (isContext(tr, 1)) throw new CmcFailure("badRequest", "CRMF requests (TaggedRequest crm) are not supported; send a PKCS#10 (tcr)");
  if (!isContext(tr, 0) || !(tr instanceof asn1js.Constructed)) throw new CmcFailure("badRequest", "the TaggedRequest is neither tcr [0] nor crm [1]");
  const [idBlock, reqBlock] = tr.valueBlock.value;
  if (!(idBlock instanceof asn1js.Integer)) throw new CmcFailure("badRequest", "TaggedCertificationRequest.bodyPartID is not an INTEGER");
  const bodyPartId = idBlock.valueBlock.valueDec;
  if (!(reqBlock instanceof asn1js.Sequence)) throw new CmcFailure("badRequest", "TaggedCertificationRequest.certificationRequest is not a SEQUENCE", [bodyPartId]);
  const csrDer = Buffer.from(reqBlock.toBER());
  return { bodyPartId, csrDer, signedByCsrKey: verifySignerIsCsrKey(sd, pkiDataDer, csrDer, bodyPartId) };
}

const SIG_HASH: Record<string, string> = { "2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512" };

/**
 * RFC 5272 3.2.1.3.1: a PKIData with a PKCS#10 is signed by that request's key. If the message
 * has a signer, its signature must verify under the CSR's public key and its messageDigest must
 * match the PKIData; an unsigned PKIData is accepted, possession then rests on the CSR alone.
 */
function verifySignerIsCsrKey(sd: pkijs.SignedData, content: Uint8Array, csrDer: Buffer, bodyPartId: number): boolean {
  if (sd.signerInfos.length === 0) return false;
  const si = sd.signerInfos[0];
  let csr: pkijs.CertificationRequest;
  try {
    csr = pkijs.CertificationRequest.fromBER(new Uint8Array(csrDer));
  } catch (e) {
    throw new CmcFailure("badRequest", `the PKCS#10 in the PKIData does not parse: ${(e as Error).message.split("\n")[0]}`, [bodyPartId]);
  }
  const hash = SIG_HASH[si.digestAlgorithm.algorithmId];
  if (!hash) throw new CmcFailure("badAlg", `the PKIData is signed with digest ${si.digestAlgorithm.algorithmId}; SHA-256, SHA-384 or SHA-512 are accepted`, [bodyPartId]);
  if (!si.signedAttrs) throw new CmcFailure("badMessageCheck", "the PKIData signature has no signed attributes", [bodyPartId]);
  const md = si.signedAttrs.attributes.find((a) => a.type === OID.messageDigest);
  const expected = createHash(hash).update(content).digest();
  if (!md || !Buffer.from((md.values[0] as asn1js.OctetString).getValue()).equals(expected)) {
    throw new CmcFailure("badMessageCheck", "the messageDigest of the PKIData signature does not match the PKIData", [bodyPartId]);
  }
  const spki = Buffer.from(csr.subjectPublicKeyInfo.toSchema().toBER());
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  // The signature covers the DER SET OF the signed attributes (RFC 5652 5.4).
  const signed = Buffer.from(si.signedAttrs.encodedValue.byteLength ? si.signedAttrs.encodedValue : si.signedAttrs.toSchema().toBER());
  signed[0] = 0x31;
  let ok = false;
  try {
    ok = nodeVerify(key.asymmetricKeyType === "ed25519" ? null : hash, signed, key, Buffer.from(si.signature.getValue()));
  } catch {
    ok = false;
  }
  if (!ok) throw new CmcFailure("popFailed", "the PKIData signature does not verify under the public key of its PKCS#10", [bodyPartId]);
  return true;
}

/**
 * A PKIResponse (RFC 5272 3.2.3) with one CMCStatusInfoV2 control (RFC 5272 6.1.1) that names
 * the request's body part. The certificate itself travels in the SignedData's certificates.
 */
export function buildPkiResponse(p: { status: keyof typeof CMC_STATUS; bodyPartIds: number[]; statusString?: string; failInfo?: CmcFailName }): Buffer {
  const info: asn1js.AsnType[] = [
    new asn1js.Integer({ value: CMC_STATUS[p.status] }),
    new asn1js.Sequence({ value: (p.bodyPartIds.length ? p.bodyPartIds : [0]).map((id) => new asn1js.Integer({ value: id })) }),
  ];
  if (p.statusString) info.push(new asn1js.Utf8String({ value: p.statusString }));
  if (p.failInfo !== undefined) info.push(new asn1js.Integer({ value: CMC_FAIL[p.failInfo] }));
  const control = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.ObjectIdentifier({ value: OID.cmcStatusInfoV2 }),
      new asn1js.Set({ value: [new asn1js.Sequence({ value: info })] }),
    ],
  });
  const response = new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [control] }), new asn1js.Sequence({ value: [] }), new asn1js.Sequence({ value: [] })] });
  return Buffer.from(response.toBER());
}
