import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { CertificateAuthority } from "../ca/authority.ts";
import type { Profile } from "../config/schema.ts";
import { EstcaError, configError, forbidden, messageOf } from "../errors.ts";
import { fromPemAll } from "../pki/encoding.ts";
import type { Store } from "../store/index.ts";
import type { ClientContext, Identity } from "./client.ts";
import { verifyPassword } from "./passwords.ts";
import { AuthThrottle, DEFAULT_THROTTLE, type ThrottleSettings } from "./throttle.ts";

export const REALM = "estca";

const unauthorized = (msg: string) => new EstcaError("unauthorized", msg, { challenge: `Basic realm="${REALM}"` });

/** A verified password stays good this long in memory, so scrypt is paid once per client. */
const PASSWORD_CACHE_MS = 5 * 60_000;
const PASSWORD_CACHE_MAX = 10_000;

// Parsed once per CA certificate rather than on every certificate-authenticated request.
const issuerCerts = new WeakMap<Buffer, X509Certificate>();
function issuerCertOf(der: Buffer): X509Certificate {
  let c = issuerCerts.get(der);
  if (!c) issuerCerts.set(der, (c = new X509Certificate(der)));
  return c;
}

/** Certificates from one of our roots, checked against the store: in date, and still valid. */
export function verifyOwnCertificate(ca: CertificateAuthority, store: Store, der: Buffer, now = Date.now()): { serial: string; subject: string; profile: string; cert: X509Certificate } | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    return null;
  }
  const issuer = ca.allIssuers().find((i) => {
    const ic = issuerCertOf(i.der);
    return cert.checkIssued(ic) && cert.verify(ic.publicKey);
  });
  if (!issuer) return null;
  const serial = cert.serialNumber.toLowerCase().replace(/^0+/, "");
  const rec = store.certs.get(serial);
  const subject = cert.subject.replace(/\n/g, ", ");
  if (!rec) throw forbidden(`client certificate ${serial} was signed by this CA but is not in its store`);
  if (rec.status === "revoked") throw forbidden(`client certificate ${serial} (${subject}) is revoked (${rec.revocationReason ?? "unspecified"})`);
  if (rec.status === "superseded") throw forbidden(`client certificate ${serial} (${subject}) was superseded by ${rec.supersededBy ?? "a newer certificate"}`);
  if (rec.notAfter < now) throw forbidden(`client certificate ${serial} (${subject}) expired on ${new Date(rec.notAfter).toISOString()}`);
  if (rec.notBefore > now) throw forbidden(`client certificate ${serial} (${subject}) is not valid before ${new Date(rec.notBefore).toISOString()}`);
  return { serial, subject, profile: rec.profile, cert };
}

/**
 * Decides who a client is, from HTTP Basic credentials or a TLS client certificate, and whether
 * that identity may use a profile. The policy lives here; est/ only extracts the credentials.
 */
export class Authenticator {
  private readonly anchors = new Map<string, X509Certificate[]>();
  private readonly verified = new Map<string, number>();
  private readonly pepper = randomBytes(32);
  private readonly throttle: AuthThrottle;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly store: Store,
    profiles: Record<string, Profile>,
    dataDir: string,
    security?: ThrottleSettings,
  ) {
    this.throttle = new AuthThrottle(security ?? DEFAULT_THROTTLE);
    for (const [name, p] of Object.entries(profiles)) {
      const certs: X509Certificate[] = [];
      for (const file of p.externalTrustAnchors) {
        const path = resolve(dataDir, file);
        let text: string;
        try {
          text = readFileSync(path, "utf8");
        } catch (e) {
          throw configError(`profiles.${name}.externalTrustAnchors: cannot read ${path}: ${messageOf(e)}`);
        }
        const ders = fromPemAll(text, ["CERTIFICATE"]);
        if (!ders.length) throw configError(`profiles.${name}.externalTrustAnchors: ${path} holds no PEM certificate`);
        certs.push(...ders.map((d) => new X509Certificate(d)));
      }
      this.anchors.set(name, certs);
    }
  }

  /** Every external anchor, so the TLS listener can ask clients for certificates under them. */
  externalAnchorsDer(): Buffer[] {
    return [...this.anchors.values()].flat().map((c) => c.raw);
  }

  async authenticate(profileName: string, profile: Profile, client: ClientContext): Promise<Identity> {
    const certProblem = client.peerChain.length ? this.tryCertificate(profileName, profile, client) : null;
    if (certProblem && "identity" in certProblem) {
      if (!profile.auth.includes("cert")) {
        if (!client.basic) throw forbidden(`profile "${profileName}" does not accept certificate authentication; send HTTP Basic credentials`);
      } else {
        return certProblem.identity;
      }
    }
    if (client.basic) {
      if (!profile.auth.includes("basic")) throw forbidden(`profile "${profileName}" does not accept HTTP Basic authentication; use a TLS client certificate`);
      const { user, password } = client.basic;
      return this.throttle.guard(user, client.addr, () => this.checkPassword(profileName, user, password));
    }
    if (certProblem && "error" in certProblem) throw certProblem.error;
    const how = profile.auth.includes("basic") ? (profile.auth.includes("cert") ? "HTTP Basic credentials or a client certificate" : "HTTP Basic credentials") : "a TLS client certificate";
    throw unauthorized(`no credentials: profile "${profileName}" needs ${how}`);
  }

  private tryCertificate(profileName: string, profile: Profile, client: ClientContext): { identity: Identity } | { error: EstcaError } {
    const leaf = client.peerChain[0];
    try {
      const own = verifyOwnCertificate(this.ca, this.store, leaf);
      if (own) {
        // A certificate speaks for the profile it was issued under, as a user's labels do: a
        // device certificate must not buy, say, a serverAuth certificate on another profile.
        if (own.profile !== profileName) {
          return { error: forbidden(`client certificate ${own.serial} (${own.subject}) was issued under profile "${own.profile}" and may enroll only there, not in "${profileName}"`) };
        }
        return { identity: { method: "cert", name: own.subject, serial: own.serial, certDer: leaf } };
      }
    } catch (e) {
      if (e instanceof EstcaError) return { error: e };
      throw e;
    }
    const ext = this.chainsToExternalAnchor(profileName, client.peerChain);
    if (ext) return { identity: { method: "external-cert", name: ext, certDer: leaf } };
    let subject = "?";
    try {
      subject = new X509Certificate(leaf).subject.replace(/\n/g, ", ");
    } catch {
      /* unparsable: say so below */
    }
    const anyAnchor = [...this.anchors.entries()].find(([n, list]) => n !== profileName && list.length && this.chainsTo(client.peerChain, list));
    if (anyAnchor) return { error: forbidden(`client certificate (${subject}) is from an external CA trusted by profile "${anyAnchor[0]}", not by "${profileName}"`) };
    return { error: unauthorized(`client certificate (${subject}) was not issued by this CA or by a trust anchor of profile "${profileName}"`) };
  }

  private chainsToExternalAnchor(profileName: string, chain: Buffer[]): string | null {
    const anchors = this.anchors.get(profileName) ?? [];
    if (!anchors.length) return null;
    return this.chainsTo(chain, anchors);
  }

  /** Walks leaf -> intermediates the client sent -> one of `anchors`, checking signatures and dates. */
  private chainsTo(chain: Buffer[], anchors: X509Certificate[], now = new Date()): string | null {
    let certs: X509Certificate[];
    try {
      certs = chain.map((d) => new X509Certificate(d));
    } catch {
      return null;
    }
    const inDate = (c: X509Certificate) => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
    let cur = certs[0];
    if (!inDate(cur)) return null;
    for (let depth = 0; depth < 8; depth++) {
      const anchor = anchors.find((a) => cur.checkIssued(a) && cur.verify(a.publicKey));
      if (anchor) return inDate(anchor) ? certs[0].subject.replace(/\n/g, ", ") : null;
      const next = certs.find((c) => c !== cur && cur.checkIssued(c) && cur.verify(c.publicKey) && c.ca);
      if (!next || !inDate(next)) return null;
      cur = next;
    }
    return null;
  }

  private async checkPassword(profileName: string, user: string, password: string): Promise<Identity> {
    const rec = this.store.users.get(user, "est");
    if (!rec) throw unauthorized(`unknown user "${user}"`);
    const cacheKey = createHash("sha256").update(this.pepper).update(user).update("\0").update(password).update("\0").update(rec.passwordHash).digest("hex");
    const until = this.verified.get(cacheKey);
    if (!(until && until > Date.now())) {
      if (!(await verifyPassword(password, rec.passwordHash))) throw unauthorized(`wrong password for user "${user}"`);
      if (this.verified.size >= PASSWORD_CACHE_MAX) this.verified.clear();
      this.verified.set(cacheKey, Date.now() + PASSWORD_CACHE_MS);
    }
    const allowed = rec.labels.length ? rec.labels : ["default"];
    if (!allowed.includes(profileName) && !allowed.includes("*")) {
      throw forbidden(`user "${user}" may use profile${allowed.length > 1 ? "s" : ""} ${allowed.map((l) => `"${l}"`).join(", ")}, not "${profileName}"`);
    }
    return { method: "basic", name: user };
  }
}
