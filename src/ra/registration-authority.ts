import type { CertificateAuthority, IssuedCert } from "../ca/authority.ts";
import type { Config, Profile } from "../config/schema.ts";
import { badRequest, forbidden, notFound } from "../errors.ts";
import type { ParsedCsr } from "../pki/csr.ts";
import { type CsrChecker, inlineCsrChecker } from "../pki/csr-pool.ts";
import { certSubjectAndSans, sameSans, sanStrings } from "../pki/names.ts";
import type { Store } from "../store/index.ts";
import { Authenticator } from "./authenticator.ts";
import { type ClientContext, type Identity, describeIdentity } from "./client.ts";
import { applyProfile, checkChannelBinding } from "./policy.ts";
import { OID } from "../pki/oids.ts";
import { buildCsrAttrs } from "../pki/csrattrs.ts";

export type EnrollOperation = "simpleenroll" | "simplereenroll" | "fullcmc" | "serverkeygen";

export type EnrollResult =
  | { kind: "issued"; issued: IssuedCert; identity: Identity; profile: string }
  | { kind: "pending"; enrollmentId: number; retryAfter: number; identity: Identity; profile: string };

export interface EnrollRequest {
  operation: EnrollOperation;
  label: string | null;
  csrDer: Buffer;
  client: ClientContext;
}

/**
 * The registration authority: decides who may get what. It authenticates the client, checks the
 * CSR against the profile, holds requests for approval, and asks the CA to sign.
 */
export class RegistrationAuthority {
  readonly auth: Authenticator;

  constructor(
    readonly ca: CertificateAuthority,
    readonly store: Store,
    readonly config: Config,
    dataDir: string,
    /** Where CSRs are parsed and their signatures checked (worker threads in a server). */
    private readonly csrs: CsrChecker = inlineCsrChecker(),
  ) {
    this.auth = new Authenticator(ca, store, config.profiles, dataDir, config.security);
  }

  profile(label: string | null): { name: string; profile: Profile } {
    const name = label ?? "default";
    const profile = Object.hasOwn(this.config.profiles, name) ? this.config.profiles[name] : undefined;
    if (!profile) throw notFound(`unknown label "${name}": no profile of that name is configured`);
    return { name, profile };
  }

  /** Authentication alone, for operations that carry no CSR but still need a known client. */
  async authenticate(label: string | null, client: ClientContext): Promise<{ name: string; profile: Profile; identity: Identity }> {
    const p = this.profile(label);
    return { ...p, identity: await this.auth.authenticate(p.name, p.profile, client) };
  }

  /** Parses and checks a CSR for a profile: proof of possession, channel binding, policy. */
  async checkCsr(profileName: string, profile: Profile, csrDer: Buffer, client: ClientContext): Promise<ParsedCsr> {
    const csr = await this.csrs.check(csrDer);
    checkChannelBinding(profileName, profile, csr, client.channelBinding, client.tlsVersion);
    return csr;
  }

  async enroll(req: EnrollRequest): Promise<EnrollResult> {
    const { name, profile, identity } = await this.authenticate(req.label, req.client);
    const csr = await this.checkCsr(name, profile, req.csrDer, req.client);
    return this.decide(req.operation, name, profile, identity, csr);
  }

  /**
   * `estca issue`: an operator hands in a CSR directly. Possession and profile policy are still
   * checked; authentication, channel binding and approval are the operator's own act.
   */
  async issueOffline(label: string | null, csrDer: Buffer, operator: string): Promise<IssuedCert> {
    const { name, profile } = this.profile(label);
    const csr = await this.csrs.check(csrDer);
    const r = await this.decide("simpleenroll", name, { ...profile, approval: "auto" }, { method: "basic", name: operator }, csr);
    if (r.kind !== "issued") throw new Error("unreachable: offline issuance is never held");
    return r.issued;
  }

  /** Everything after the CSR is trusted: reenroll rules, approval, issuance. */
  async decide(operation: EnrollOperation, name: string, profile: Profile, identity: Identity, csr: ParsedCsr): Promise<EnrollResult> {
    let supersedes: string | null = null;
    if (operation === "simplereenroll") supersedes = this.checkReenroll(name, profile, identity, csr);
    const { sans } = applyProfile(name, profile, csr);
    const requester = describeIdentity(identity);

    let enrollmentId: number | null = null;
    if (profile.approval === "manual") {
      const open = this.store.enrollments.findOpen(name, csr.spkiSha256, csr.subject);
      if (!open) {
        const id = this.store.enrollments.create({ profile: name, operation, requester, subject: csr.subject, sans: sanStrings(sans), spkiSha256: csr.spkiSha256, csrDer: csr.der });
        return { kind: "pending", enrollmentId: id, retryAfter: this.config.server.retryAfterSeconds, identity, profile: name };
      }
      if (open.state === "pending") return { kind: "pending", enrollmentId: open.id, retryAfter: this.config.server.retryAfterSeconds, identity, profile: name };
      if (open.state === "rejected") throw forbidden(`request ${open.id} was rejected by ${open.decidedBy ?? "an administrator"}: ${open.reason ?? "no reason given"}`);
      enrollmentId = open.id;
    }

    const keyAlgorithm = csr.keyType === "rsa" ? "rsa" : csr.keyType === "ed25519" ? "ed25519" : "ec";
    const issued = await this.ca.issue(
      {
        subject: csr.subject,
        subjectDer: csr.subjectDer,
        spki: csr.spki,
        keyId: csr.keyId,
        keyAlgorithm,
        sans,
        validityDays: profile.validityDays,
        keyUsage: profile.keyUsage,
        extendedKeyUsage: profile.extendedKeyUsage,
        profile: name,
        requester,
      },
      (serial) => {
        if (supersedes) this.store.certs.supersede(supersedes, serial);
        if (enrollmentId !== null) this.store.enrollments.markIssued(enrollmentId, serial);
      },
    );
    return { kind: "issued", issued, identity, profile: name };
  }

  /**
   * RFC 7030 4.2.2: the client renews with the certificate it holds. The new CSR must name the
   * same subject and SANs, unless it carries ChangeSubjectName and the profile allows it.
   */
  private checkReenroll(profileName: string, profile: Profile, identity: Identity, csr: ParsedCsr): string {
    if (identity.method !== "cert" || !identity.serial || !identity.certDer) {
      throw forbidden("simplereenroll needs the TLS client certificate being renewed, issued by this CA; HTTP Basic alone is not enough");
    }
    const changeSubject = csr.attributes.some((a) => a.type === OID.changeSubjectName);
    if (changeSubject) {
      if (!profile.allowChangeSubjectName) throw forbidden(`CSR carries ChangeSubjectName but profile "${profileName}" does not allow subject changes on reenroll`);
      return identity.serial;
    }
    const oldSubject = certSubjectAndSans(identity.certDer);
    if (oldSubject.subject !== csr.subject) {
      throw badRequest(`reenroll CSR subject "${csr.subject}" differs from the certificate being renewed ("${oldSubject.subject}"); send the same subject or a ChangeSubjectName attribute`);
    }
    if (!sameSans(oldSubject.sans, csr.sans)) {
      throw badRequest(`reenroll CSR subjectAltName (${sanStrings(csr.sans).join(", ") || "none"}) differs from the certificate being renewed (${sanStrings(oldSubject.sans).join(", ") || "none"})`);
    }
    return identity.serial;
  }
}
