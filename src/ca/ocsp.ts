import "reflect-metadata";
import { createHash, randomBytes } from "node:crypto";
import * as x509 from "@peculiar/x509";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { EstcaError } from "../errors.ts";
import type { KeyType } from "../hsm/key-manager.ts";
import { defaultHashFor } from "../hsm/key-manager.ts";
import { OID } from "../pki/oids.ts";
import { wholeSeconds } from "../pki/certificate.ts";
import type { CaCertRecord } from "../store/index.ts";
import { type CertificateAuthority, type Issuer, caRecord } from "./authority.ts";
import { HsmPrivateKey, hsmPkijsEngine } from "./hsm-crypto.ts";
import { normalizeSerial, reasonCode } from "./revocation.ts";

export interface OcspSettings {
  /** Sign with a delegated responder certificate (id-pkix-ocsp-nocheck) rather than the CA key. */
  delegated: boolean;
  validityMinutes: number;
}

/** RFC 6960 4.2.1 OCSPResponseStatus. */
export const OCSP_STATUS = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, unauthorized: 6 } as const;

/** Responder certificates are short-lived (they cannot be revoked: nocheck) and renewed when a third is left. */
const RESPONDER_DAYS = 7;
const RESPONDER_RENEW_MS = (RESPONDER_DAYS / 3) * 86400_000;
const RESPONDER_KEY_TYPE: KeyType = "ec-p256";

const HASH_BY_OID: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};

/**
 * A fresh label per responder key: two server workers that both find no responder must not make
 * two keys under one label, or one would sign with the key of the other's certificate.
 */
export function responderKeyLabel(generation: number): string {
  return `estca-ocsp-${generation}-${randomBytes(4).toString("hex")}`;
}

interface Signer {
  recordId: number | null;
  key: HsmPrivateKey;
  /** SHA-1 of the signing public key: the responderID byKey (names repeat across root generations). */
  keyHash: Buffer;
  certs: pkijs.Certificate[];
  notAfter: number;
}

function statusOnly(status: number): Buffer {
  return Buffer.from(new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: status }) }).toSchema().toBER());
}

/**
 * The OCSP responder (RFC 6960): answers good, revoked (with time and reason) or unknown from
 * the store, signed in the token by the CA key or by that key's delegated responder.
 * Certificates of an older root generation are answered for, and signed by or for, that root.
 */
export class OcspResponder {
  private readonly signers = new Map<string, Signer>();
  /** CertID hashes of each issuer, per hash algorithm: "ski:alg" -> name hash + key hash. */
  private readonly idHashes = new Map<string, { name: Buffer; key: Buffer }>();
  private readonly engine: pkijs.ICryptoEngine;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly settings: OcspSettings,
  ) {
    this.engine = hsmPkijsEngine(ca.crypto);
  }

  /** Answers a DER OCSPRequest with a DER OCSPResponse; failures are OCSP statuses, not exceptions. */
  async respond(reqDer: Uint8Array, nowMs = Date.now()): Promise<{ der: Buffer; summary: string }> {
    let req: pkijs.OCSPRequest;
    try {
      req = pkijs.OCSPRequest.fromBER(new Uint8Array(reqDer));
    } catch {
      return { der: statusOnly(OCSP_STATUS.malformedRequest), summary: "malformed request" };
    }
    const list = req.tbsRequest.requestList;
    this.ca.refresh();
    if (!list.length) return { der: statusOnly(OCSP_STATUS.malformedRequest), summary: "empty request list" };

    // One response has one signer: the issuer of the first request. Requests about another issuer's
    // certificates in the same message are answered unknown.
    const issuer = this.issuerOf(list[0].reqCert);
    if (!issuer) return { der: statusOnly(OCSP_STATUS.unauthorized), summary: "not authoritative for this issuer" };
    let signer: Signer;
    try {
      signer = await this.signerFor(issuer, nowMs);
    } catch (e) {
      if (e instanceof EstcaError && e.kind === "unavailable") return { der: statusOnly(OCSP_STATUS.tryLater), summary: e.message };
      throw e;
    }

    const now = wholeSeconds(nowMs);
    const nextUpdate = wholeSeconds(nowMs + this.settings.validityMinutes * 60_000);
    const summaries: string[] = [];
    const responses = list.map((r) => {
      const { status, text } = this.statusOf(r.reqCert, issuer);
      summaries.push(text);
      return new pkijs.SingleResponse({ certID: r.reqCert, certStatus: status, thisUpdate: now, nextUpdate });
    });

    const basic = new pkijs.BasicOCSPResponse();
    basic.tbsResponseData.responderID = new asn1js.OctetString({ valueHex: new Uint8Array(signer.keyHash) });
    basic.tbsResponseData.producedAt = now;
    basic.tbsResponseData.responses = responses;
    const nonce = req.tbsRequest.requestExtensions?.find((e) => e.extnID === OID.ocspNonce);
    if (nonce) basic.tbsResponseData.responseExtensions = [new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: nonce.extnValue.valueBlock.valueHexView.slice().buffer })];
    if (signer.certs.length) basic.certs = signer.certs;
    await basic.sign(signer.key as unknown as CryptoKey, signer.key.hash, this.engine);

    const resp = new pkijs.OCSPResponse({
      responseStatus: new asn1js.Enumerated({ value: OCSP_STATUS.successful }),
      responseBytes: new pkijs.ResponseBytes({
        responseType: OID.ocspBasic,
        response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }),
      }),
    });
    return { der: Buffer.from(resp.toSchema().toBER()), summary: summaries.join(", ") };
  }

  /** The CA key a CertID names: issuer name hash and key hash both match (names repeat across generations). */
  private issuerOf(id: pkijs.CertID): Issuer | null {
    const alg = HASH_BY_OID[id.hashAlgorithm.algorithmId];
    if (!alg) return null;
    const nameHash = Buffer.from(id.issuerNameHash.valueBlock.valueHexView);
    const keyHash = Buffer.from(id.issuerKeyHash.valueBlock.valueHexView);
    for (const iss of this.ca.allIssuers()) {
      const h = this.idHashesOf(iss, alg);
      if (h.name.equals(nameHash) && h.key.equals(keyHash)) return iss;
    }
    return null;
  }

  private idHashesOf(iss: Issuer, alg: string): { name: Buffer; key: Buffer } {
    const k = `${iss.ski}:${alg}`;
    let h = this.idHashes.get(k);
    if (!h) {
      const c = pkijs.Certificate.fromBER(new Uint8Array(iss.der));
      h = {
        name: createHash(alg).update(new Uint8Array(c.subject.toSchema().toBER(false))).digest(),
        key: createHash(alg).update(c.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest(),
      };
      this.idHashes.set(k, h);
    }
    return h;
  }

  private statusOf(id: pkijs.CertID, issuer: Issuer): { status: asn1js.BaseBlock; text: string } {
    const unknown = (why: string) => ({ status: new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } }), text: `unknown (${why})` });
    if (this.issuerOf(id)?.ski !== issuer.ski) return unknown("another issuer");
    let serial: string;
    try {
      serial = normalizeSerial(Buffer.from(id.serialNumber.valueBlock.valueHexView).toString("hex"));
    } catch {
      return unknown("bad serial");
    }
    const rec = this.ca.store.certs.get(serial);
    if (!rec || rec.issuerKey !== issuer.ski) return unknown(`${serial} not issued by this key`);
    if (rec.status === "revoked" && rec.revokedAt !== null) {
      const value: asn1js.BaseBlock[] = [new asn1js.GeneralizedTime({ valueDate: wholeSeconds(rec.revokedAt) })];
      if (rec.revocationReason && rec.revocationReason !== "unspecified") {
        value.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Enumerated({ value: reasonCode(rec.revocationReason) })] }));
      }
      return { status: new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value }), text: `${serial} revoked (${rec.revocationReason ?? "unspecified"})` };
    }
    return { status: new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } }), text: `${serial} good` };
  }

  /** Who signs for `issuer`: the CA key itself, or its delegated responder (made or renewed on demand). */
  async signerFor(issuer: Issuer, now = Date.now()): Promise<Signer> {
    if (!this.settings.delegated) {
      return { recordId: null, key: issuer.key, keyHash: this.keyHashOf(issuer.der), certs: [], notAfter: issuer.cert.notAfter.getTime() };
    }
    const cached = this.signers.get(issuer.ski);
    if (cached && cached.notAfter - now > RESPONDER_RENEW_MS) return cached;
    const rec = this.ca.store.caCerts
      .find("ocsp", "active")
      .find((r) => r.generation === issuer.generation && r.notAfter - now > RESPONDER_RENEW_MS && r.notBefore <= now + 60_000);
    const signer = rec ? this.signerFromRecord(rec) : await this.issueResponder(issuer, now);
    this.signers.set(issuer.ski, signer);
    return signer;
  }

  private signerFromRecord(rec: CaCertRecord): Signer {
    const keyType = rec.keyType as KeyType;
    return {
      recordId: rec.id,
      key: new HsmPrivateKey({ label: rec.keyLabel!, keyType }, defaultHashFor(keyType)),
      keyHash: this.keyHashOf(rec.der),
      certs: [pkijs.Certificate.fromBER(new Uint8Array(rec.der))],
      notAfter: rec.notAfter,
    };
  }

  /** A responder key in the token (kept across renewals) and a short-lived certificate from `issuer`. */
  private async issueResponder(issuer: Issuer, now: number): Promise<Signer> {
    const km = this.ca.km;
    // A renewal keeps the generation's responder key; the first responder gets a new one.
    const previous = this.ca.store.caCerts.all().filter((r) => r.role === "ocsp" && r.generation === issuer.generation && r.keyLabel).pop();
    const ref = (previous && km.findKey(previous.keyLabel!)) || km.generateKeyPair(responderKeyLabel(issuer.generation), RESPONDER_KEY_TYPE);
    const spki = km.publicKeySpki(ref);
    const cn = issuer.cert.subjectName.getField("CN")[0] ?? "estca";
    const issued = await this.ca.issue(
      {
        subject: `CN=${cn} OCSP Responder ${issuer.generation}`,
        spki,
        keyAlgorithm: "ec",
        sans: [],
        validityDays: RESPONDER_DAYS,
        keyUsage: ["digitalSignature"],
        extendedKeyUsage: ["ocspSigning"],
        profile: "_ocsp",
        requester: "estca",
        kind: "ocsp",
        // RFC 6960 4.2.2.2.1: clients need not check this certificate's own revocation.
        extraExtensions: [new x509.Extension(OID.ocspNoCheck, false, new Uint8Array(new asn1js.Null().toBER()))],
      },
      undefined,
      issuer,
    );
    const store = this.ca.store;
    const id = store.transaction(() => {
      for (const old of store.caCerts.find("ocsp", "active")) if (old.generation === issuer.generation) store.caCerts.setStatus(old.id, "retired");
      return store.caCerts.add(caRecord(issued.cert, { generation: issuer.generation, role: "ocsp", status: "active", keyLabel: ref.label, keyType: ref.keyType }), now);
    });
    const rec = store.caCerts.all().find((r) => r.id === id)!;
    return this.signerFromRecord(rec);
  }

  private keyHashOf(certDer: Buffer): Buffer {
    const c = pkijs.Certificate.fromBER(new Uint8Array(certDer));
    return createHash("sha1").update(c.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest();
  }
}
