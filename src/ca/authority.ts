import "reflect-metadata";
import { createHash, randomBytes } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { EstcaError, unavailable } from "../errors.ts";
import { type HashName, type KeyManager, type KeyType, defaultHashFor, isEcKeyType } from "../hsm/key-manager.ts";
import type { CaCertRecord, Store } from "../store/index.ts";
import { type GeneralNameEntry, sanStrings } from "../pki/names.ts";
import { toPem } from "../pki/encoding.ts";
import { HsmPrivateKey, hsmCrypto, hsmPkijsEngine, signingAlgorithmOf } from "./hsm-crypto.ts";
import type { CmsSigner } from "../pki/cms-signed.ts";
import { ekuExtension, keyIdentifier, keyUsageExtension } from "./extensions.ts";
import { ecdsaSignatureDer, encodeSigned, encodeTbsCertificate, signatureAlgorithmDer, subjectAltNameDer, subjectKeyIdentifierDer, wholeSeconds } from "../pki/certificate.ts";

/** What the RA decided a certificate should hold; the CA adds the CA-side extensions and signs. */
export interface CertTemplate {
  subject: x509.Name | string;
  /** The subject as DER when the caller has it (a parsed CSR): it is then embedded as is. */
  subjectDer?: Uint8Array;
  spki: Uint8Array;
  /** Key identifier of `spki` (hex) when the caller has it; computed otherwise. */
  keyId?: string;
  keyAlgorithm: "rsa" | "ec" | "ed25519";
  sans: GeneralNameEntry[];
  validityDays: number;
  keyUsage: readonly string[];
  extendedKeyUsage: readonly string[];
  profile: string;
  requester: string;
  kind?: "ee" | "tls" | "ocsp";
  extraExtensions?: x509.Extension[];
}

export interface IssuedCert {
  serial: string;
  der: Buffer;
  /** Parsed on first use: most callers only need the DER. */
  readonly cert: x509.X509Certificate;
  notAfter: Date;
}

/** One CA key and the certificate that makes it an issuer. */
export interface Issuer {
  generation: number;
  cert: x509.X509Certificate;
  der: Buffer;
  key: HsmPrivateKey;
  ski: string;
  record: CaCertRecord;
  /** What every certificate it signs repeats, encoded once. */
  subjectDer: Buffer;
  subject: string;
  signatureAlgorithmDer: Buffer;
}

export interface UrlConfig {
  /** Base of the CRL and OCSP URLs written into certificates, e.g. http://ca.example:8080 */
  httpBaseUrl: string;
}

const CLOCK_SKEW_MS = 60_000;

export function rootKeyLabel(generation: number): string {
  return `estca-root-${generation}`;
}

export function crlUrl(base: string, generation: number): string {
  return `${base}/crl/${generation}.crl`;
}
export function ocspUrl(base: string): string {
  return `${base}/ocsp`;
}
export function caIssuersUrl(base: string, generation: number): string {
  return `${base}/ca/${generation}.crt`;
}

/** 16 random bytes, positive and without a leading zero: 126 bits of entropy. */
export function newSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x40;
  return b.toString("hex");
}

/**
 * The certificate authority: builds and signs certificates with keys that stay in the token.
 * It never sees HTTP; the RA hands it a template, it hands back a durable certificate.
 */
export class CertificateAuthority {
  readonly crypto: Crypto;
  private pkijsEngine: ReturnType<typeof hsmPkijsEngine> | null = null;
  private current: Issuer | null = null;
  private readonly issuers = new Map<string, Issuer>();
  private readonly extensionCache = new Map<string, Buffer | null>();
  /** The RFC 4210 4.4 rollover links (OldWithNew, NewWithOld) of every generation. */
  private links: CaCertRecord[] = [];
  /** ca_certs as of the last reload, to notice a rollover made by another process. */
  private seen = "";

  constructor(
    readonly km: KeyManager,
    readonly store: Store,
    private urls: UrlConfig,
  ) {
    this.crypto = hsmCrypto(km);
    this.reload();
  }

  setUrls(urls: UrlConfig): void {
    this.urls = urls;
  }

  get httpBaseUrl(): string {
    return this.urls.httpBaseUrl;
  }

  /** Re-reads the CA certificates from the store (after init, rollover or recovery). */
  reload(): void {
    this.issuers.clear();
    this.current = null;
    this.seen = this.store.caCerts.fingerprint();
    const all = this.store.caCerts.all();
    this.links = all.filter((r) => r.role === "oldWithNew" || r.role === "newWithOld");
    for (const rec of all) {
      if (rec.role !== "root" || !rec.keyLabel || !rec.keyType) continue;
      const iss = this.issuerFrom(rec);
      this.issuers.set(iss.ski, iss);
      if (rec.status === "active" && (!this.current || rec.generation > this.current.generation)) this.current = iss;
    }
  }

  private issuerFrom(rec: CaCertRecord): Issuer {
    const keyType = rec.keyType as KeyType;
    const cert = new x509.X509Certificate(new Uint8Array(rec.der));
    const hash = defaultHashFor(keyType);
    return {
      generation: rec.generation,
      cert,
      der: rec.der,
      key: new HsmPrivateKey({ label: rec.keyLabel!, keyType }, hash),
      ski: rec.ski,
      record: rec,
      subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()),
      subject: cert.subject,
      signatureAlgorithmDer: signatureAlgorithmDer(isEcKeyType(keyType) ? "ECDSA" : "RSA", hash),
    };
  }

  get initialized(): boolean {
    return this.current !== null;
  }

  /**
   * Extensions that are the same for every certificate of an issuer and profile, as DER. Building
   * one costs as much as a token signature, so each is built once and shared.
   */
  private sameForMany(key: string, make: () => x509.Extension | null): Buffer | null {
    if (!this.extensionCache.has(key)) {
      if (this.extensionCache.size >= 1000) this.extensionCache.clear();
      const ext = make();
      this.extensionCache.set(key, ext ? Buffer.from(ext.rawData) : null);
    }
    return this.extensionCache.get(key)!;
  }

  /**
   * Reloads if another process (the CLI's rollover) changed the CA certificates: one tiny query,
   * so that from the rollover's commit on, every process issues under the new key.
   */
  refresh(): void {
    if (this.store.caCerts.fingerprint() !== this.seen) this.reload();
  }

  /** The current CA key as a CMS signer (CMC responses, server-generated keys); it signs in the token. */
  cmsSigner(): CmsSigner {
    this.pkijsEngine ??= hsmPkijsEngine(this.crypto);
    const iss = this.issuer;
    return { certDer: iss.der, key: iss.key as unknown as CryptoKey, hash: iss.key.hash, engine: this.pkijsEngine };
  }

  /** The issuer new certificates are signed by. */
  get issuer(): Issuer {
    if (!this.current) throw unavailable("the CA has no active root: run `estca init`");
    return this.current;
  }

  issuerBySki(ski: string): Issuer | undefined {
    return this.issuers.get(ski);
  }

  issuerByGeneration(generation: number): Issuer | undefined {
    return this.allIssuers().find((i) => i.generation === generation);
  }

  allIssuers(): Issuer[] {
    return [...this.issuers.values()].sort((a, b) => a.generation - b.generation);
  }

  /** Creates the first root: a key pair in the token and its self-signed certificate. */
  async createRoot(opts: { name: string; keyType: KeyType; validityDays: number; generation?: number }): Promise<Issuer> {
    const generation = opts.generation ?? 1;
    const label = rootKeyLabel(generation);
    const ref = this.km.findKey(label) ?? this.km.generateKeyPair(label, opts.keyType);
    const key = new HsmPrivateKey(ref, defaultHashFor(ref.keyType));
    const spki = this.km.publicKeySpki(ref);
    const cert = await this.signCaCert({
      subject: opts.name,
      issuerName: opts.name,
      spki,
      signer: key,
      issuerSki: keyIdentifier(spki),
      notBefore: new Date(Date.now() - CLOCK_SKEW_MS),
      notAfter: new Date(Date.now() + opts.validityDays * 86400_000),
    });
    this.store.caCerts.add(caRecord(cert, { generation, role: "root", status: "active", keyLabel: label, keyType: ref.keyType }));
    this.reload();
    return this.issuer;
  }

  /** Signs a CA certificate (a root or a rollover link) with `signer`. */
  async signCaCert(p: {
    subject: string | x509.Name;
    issuerName: string | x509.Name;
    spki: Uint8Array;
    signer: HsmPrivateKey;
    issuerSki: string;
    notBefore: Date;
    notAfter: Date;
  }): Promise<x509.X509Certificate> {
    return x509.X509CertificateGenerator.create(
      {
        serialNumber: newSerial(),
        subject: p.subject,
        issuer: p.issuerName,
        notBefore: p.notBefore,
        notAfter: p.notAfter,
        publicKey: new Uint8Array(p.spki),
        signingKey: p.signer as unknown as CryptoKey,
        signingAlgorithm: signingAlgorithmOf(p.signer),
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
          new x509.SubjectKeyIdentifierExtension(keyIdentifier(p.spki)),
          new x509.AuthorityKeyIdentifierExtension(p.issuerSki),
        ],
      },
      this.crypto,
    );
  }

  /**
   * Issues an end-entity certificate and commits it before returning: nobody sees a certificate
   * the store could lose. `alsoInTransaction` runs in the same transaction (supersede, approvals).
   */
  async issue(t: CertTemplate, alsoInTransaction?: (serial: string) => void, issuer?: Issuer): Promise<IssuedCert> {
    // Only an OCSP responder certificate is issued by an older key: it must speak for that key's certificates.
    if (!issuer) this.refresh();
    const iss = issuer ?? this.issuer;
    const now = Date.now();
    const notBefore = new Date(now - CLOCK_SKEW_MS);
    const wanted = now + t.validityDays * 86400_000;
    const notAfter = new Date(Math.min(wanted, iss.cert.notAfter.getTime()));
    const subjectName = t.subjectDer ? null : typeof t.subject === "string" ? new x509.Name(t.subject) : t.subject;
    const subject = subjectName ? subjectName.toString() : String(t.subject);
    const subjectDer = t.subjectDer ?? Buffer.from(subjectName!.toArrayBuffer());
    const same = (key: string, make: () => x509.Extension | null) => this.sameForMany(key, make);
    const exts: Uint8Array[] = [
      same("bc", () => new x509.BasicConstraintsExtension(false, undefined, true))!,
      subjectKeyIdentifierDer(t.keyId ?? keyIdentifier(t.spki)),
      same(`aki ${iss.ski}`, () => new x509.AuthorityKeyIdentifierExtension(iss.ski))!,
    ];
    const ku = same(`ku ${t.keyAlgorithm} ${t.keyUsage.join()}`, () => keyUsageExtension(t.keyUsage, t.keyAlgorithm) ?? null);
    if (ku) exts.push(ku);
    const eku = same(`eku ${t.extendedKeyUsage.join()}`, () => ekuExtension(t.extendedKeyUsage) ?? null);
    if (eku) exts.push(eku);
    // RFC 5280 4.2.1.6: with an empty subject the SAN carries the identity and is critical.
    if (t.sans.some((s) => s.type !== "other")) exts.push(subjectAltNameDer(t.sans, subject === ""));
    const base = this.urls.httpBaseUrl;
    exts.push(same(`crldp ${crlUrl(base, iss.generation)}`, () => new x509.CRLDistributionPointsExtension([crlUrl(base, iss.generation)]))!);
    exts.push(same(`aia ${base} ${iss.generation}`, () => new x509.AuthorityInfoAccessExtension({ ocsp: [ocspUrl(base)], caIssuers: [caIssuersUrl(base, iss.generation)] }))!);
    if (t.extraExtensions) exts.push(...t.extraExtensions.map((e) => new Uint8Array(e.rawData)));

    for (let attempt = 0; attempt < 5; attempt++) {
      const serial = newSerial();
      const tbs = encodeTbsCertificate({
        serialHex: serial,
        signatureAlgorithmDer: iss.signatureAlgorithmDer,
        issuerDer: iss.subjectDer,
        notBefore,
        notAfter,
        subjectDer,
        spkiDer: t.spki,
        extensionsDer: exts,
      });
      const der = encodeSigned(tbs, iss.signatureAlgorithmDer, this.signInToken(iss, tbs));
      // Group commit: shares the fsync with concurrent issuances and resolves only once durable.
      const inserted = await this.store.commits.run(() => {
        const ok = this.store.certs.insert({
          serial,
          subject,
          sans: sanStrings(t.sans),
          notBefore: wholeSeconds(notBefore.getTime()).getTime(),
          notAfter: wholeSeconds(notAfter.getTime()).getTime(),
          issuer: iss.subject,
          issuerKey: iss.ski,
          profile: t.profile,
          requester: t.requester,
          spkiSha256: createHash("sha256").update(t.spki).digest("hex"),
          der,
          createdAt: now,
          kind: t.kind ?? "ee",
        });
        if (ok && alsoInTransaction) alsoInTransaction(serial);
        return ok;
      });
      if (inserted) return issuedCert(serial, der, notAfter);
    }
    throw new EstcaError("internal", "could not draw a unique serial number in 5 attempts");
  }

  /** A signature by the issuer's key in the token, in the DER form X.509 carries. */
  signInToken(iss: Issuer, data: Uint8Array): Buffer {
    const raw = this.km.sign(iss.key.ref, iss.key.hash, data);
    const alg = iss.key.algorithm;
    return alg.name === "ECDSA" ? ecdsaSignatureDer(raw, (alg as EcKeyAlgorithm).namedCurve as "P-256" | "P-384") : raw;
  }

  /** Hash used with the current key, for callers that sign other structures (OCSP, CMS). */
  get hash(): HashName {
    return this.issuer.key.hash;
  }

  /**
   * What /cacerts serves (RFC 7030 4.1.3): the current root and, during a rollover, the
   * links between the old and new keys.
   */
  cacerts(now = Date.now()): Buffer[] {
    this.refresh();
    const links = [this.activeLink("oldWithNew", now), this.activeLink("newWithOld", now)].filter((l) => l !== undefined);
    return [this.issuer.der, ...links.map((l) => l.der)];
  }

  /**
   * What the TLS listener sends after its own certificate: OldWithNew while it is valid, so a
   * client that trusts only the previous root can still connect and learn the new one.
   */
  listenerChain(now = Date.now()): Buffer[] {
    const l = this.activeLink("oldWithNew", now);
    return l ? [l.der] : [];
  }

  /** A link of the current generation, served only while the old root it ties to is in date. */
  private activeLink(role: "oldWithNew" | "newWithOld", now: number): CaCertRecord | undefined {
    const gen = this.issuer.generation;
    return this.links.find((l) => l.role === role && l.generation === gen && l.status === "active" && l.notAfter > now);
  }

  /** PEM of the trust anchors a client should pin: every root that is still in date. */
  trustAnchorsPem(now = Date.now()): string {
    return this.allIssuers()
      .filter((i) => i.cert.notAfter.getTime() > now && i.record.status !== "pending")
      .sort((a, b) => b.generation - a.generation)
      .map((i) => toPem(i.der, "CERTIFICATE"))
      .join("");
  }
}

function issuedCert(serial: string, der: Buffer, notAfter: Date): IssuedCert {
  let cert: x509.X509Certificate | undefined;
  return {
    serial,
    der,
    notAfter,
    get cert() {
      return (cert ??= new x509.X509Certificate(new Uint8Array(der)));
    },
  };
}

export function caRecord(
  cert: x509.X509Certificate,
  p: Pick<CaCertRecord, "generation" | "role" | "status" | "keyLabel" | "keyType">,
): Omit<CaCertRecord, "id" | "createdAt"> {
  return {
    ...p,
    subject: cert.subject,
    serial: cert.serialNumber.toLowerCase(),
    ski: keyIdentifier(new Uint8Array(cert.publicKey.rawData)),
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    der: Buffer.from(cert.rawData),
  };
}
