import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import * as asn1js from "asn1js";
import { EstcaError } from "../errors.ts";
import type { CrlRecord } from "../store/index.ts";
import type { CertificateAuthority, Issuer } from "./authority.ts";
import { encodeSigned, wholeSeconds } from "../pki/certificate.ts";
import { encodeCrlEntry, encodeTbsCertList } from "../pki/crl.ts";
import { reasonCode } from "./revocation.ts";

const CRL_NUMBER_OID = "2.5.29.20";

export interface CrlSettings {
  validityHours: number;
  /** Regenerate this long before nextUpdate, so a relying party never holds an expired CRL. */
  refreshBeforeHours: number;
}

/**
 * Builds and signs the CRL of each CA key (RFC 5280 section 5) through the token, and decides
 * when one is due. State lives in the store, so several processes (server, CLI) can publish.
 */
export class CrlPublisher {
  /** Entries per CRL number: cheap staleness checks without re-parsing a CRL on every tick. */
  private readonly entries = new Map<number, number>();
  private entryCache = new Map<string, Buffer>();

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly settings: CrlSettings,
  ) {}

  /** Keys whose root is still in date: only their CRLs are kept fresh. */
  liveIssuers(now = Date.now()): Issuer[] {
    return this.ca.allIssuers().filter((i) => i.cert.notAfter.getTime() > now);
  }

  /** Signs a new CRL for `issuer` with the next CRL number and stores it. */
  async publish(issuer: Issuer, now = Date.now()): Promise<CrlRecord> {
    const store = this.ca.store;
    const revoked = store.certs.revokedBy(issuer.ski, now);
    const thisUpdate = wholeSeconds(now);
    const nextUpdate = wholeSeconds(now + this.settings.validityHours * 3600_000);
    const entriesDer = this.entriesDer(revoked);
    const aki = Buffer.from(new x509.AuthorityKeyIdentifierExtension(issuer.ski).rawData);
    for (let attempt = 0; attempt < 5; attempt++) {
      const number = store.crls.nextNumber();
      const crlNumber = new x509.Extension(CRL_NUMBER_OID, false, new Uint8Array(new asn1js.Integer({ value: number }).toBER()));
      const tbs = encodeTbsCertList({
        signatureAlgorithmDer: issuer.signatureAlgorithmDer,
        issuerDer: issuer.subjectDer,
        thisUpdate,
        nextUpdate,
        entriesDer,
        extensionsDer: [aki, new Uint8Array(crlNumber.rawData)],
      });
      const der = encodeSigned(tbs, issuer.signatureAlgorithmDer, this.ca.signInToken(issuer, tbs));
      // The record keeps the exact time (not the encoded whole second) so that a revocation made
      // a moment before this CRL is known to be in it.
      const rec: CrlRecord = { number, issuerKey: issuer.ski, thisUpdate: now, nextUpdate: nextUpdate.getTime(), der, entries: revoked.length };
      if (store.crls.addIfNumberFree(rec)) {
        this.entries.set(number, revoked.length);
        return rec;
      }
    }
    throw new EstcaError("unavailable", "could not store a CRL: its number was taken 5 times by another process", { retryAfter: 5 });
  }

  /**
   * The DER of each entry, from a cache: an entry never changes, and encoding 20,000 of them
   * again for every revocation blocked the event loop for seconds (docs/PERFORMANCE.md).
   */
  private entriesDer(revoked: { serial: string; revokedAt: number; reason: string | null }[]): Buffer[] {
    const next = new Map<string, Buffer>();
    const out = revoked.map((r) => {
      const key = `${r.serial} ${r.revokedAt} ${r.reason ?? ""}`;
      // RFC 5280 5.3.1: the reason code unspecified SHOULD be absent.
      const der = this.entryCache.get(key) ?? encodeCrlEntry(r.serial, wholeSeconds(r.revokedAt), r.reason && r.reason !== "unspecified" ? reasonCode(r.reason) : undefined);
      next.set(key, der);
      return der;
    });
    // Only the entries of the newest CRL are kept: expired ones leave the cache with the list.
    this.entryCache = next;
    return out;
  }

  /** Whether `issuer`'s newest CRL misses a revocation or is near its nextUpdate. */
  isStale(issuer: Issuer, now = Date.now()): boolean {
    const latest = this.ca.store.crls.latest(issuer.ski);
    if (!latest) return true;
    if (now >= latest.nextUpdate - this.settings.refreshBeforeHours * 3600_000) return true;
    // The operator shortened crl.validityHours: apply it now rather than at the old nextUpdate.
    if (latest.nextUpdate > now + this.settings.validityHours * 3600_000 + 1000) return true;
    const sum = this.ca.store.certs.revocationSummary(issuer.ski, now);
    if (sum.lastAt > latest.thisUpdate) return true;
    // Fewer entries are due too: expired certificates leave the CRL.
    return this.entryCount(latest) !== sum.count;
  }

  private entryCount(rec: CrlRecord): number {
    let n = this.entries.get(rec.number) ?? rec.entries ?? undefined;
    if (n === undefined) {
      // A CRL stored before the store kept entry counts (schema 5 and older).
      n = new x509.X509Crl(new Uint8Array(rec.der)).entries.length;
      this.entries.set(rec.number, n);
    }
    return n;
  }

  /** Publishes every CRL that is due; returns what it published. */
  async refreshDue(now = Date.now()): Promise<CrlRecord[]> {
    const out: CrlRecord[] = [];
    for (const iss of this.liveIssuers(now)) if (this.isStale(iss, now)) out.push(await this.publish(iss, now));
    return out;
  }

  /** The CRL to serve for one generation (the current one if omitted), published first if none exists yet. */
  async current(generation?: number): Promise<{ issuer: Issuer; crl: CrlRecord } | null> {
    this.ca.refresh();
    const issuer = generation === undefined ? this.ca.issuer : this.ca.issuerByGeneration(generation);
    if (!issuer) return null;
    const crl = this.ca.store.crls.latest(issuer.ski) ?? (await this.publish(issuer));
    return { issuer, crl };
  }
}
