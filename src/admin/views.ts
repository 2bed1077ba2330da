import "reflect-metadata";
import { createHash } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { crlUrl, ocspUrl } from "../ca/authority.ts";
import { EKU_NAMES } from "../config/schema.ts";
import { isEcKeyType } from "../hsm/key-manager.ts";
import { toPem } from "../pki/encoding.ts";
import type { Services } from "../server/services.ts";
import type { CertRecord, Enrollment, RequestLogEntry, UserRecord } from "../store/index.ts";

// The JSON shapes the UI reads. Timestamps are ISO strings; DER never leaves as raw bytes.

const EKU_BY_OID = Object.fromEntries(Object.entries(EKU_NAMES).map(([name, oid]) => [oid, name]));

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const DAY = 86400_000;

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The PKCS#11 mechanism the key manager signs with for this key (see hsm/pkcs11-key-manager.ts). */
function mechanismOf(keyType: string, hash: string): string {
  if (isEcKeyType(keyType as never)) return `CKM_ECDSA (${hash} digest computed by estca)`;
  return `CKM_${hash.replace("-", "")}_RSA_PKCS`;
}

export function certSummary(c: CertRecord, now = Date.now()) {
  const expired = c.notAfter < now;
  return {
    serial: c.serial,
    subject: c.subject,
    sans: c.sans,
    notBefore: iso(c.notBefore),
    notAfter: iso(c.notAfter),
    daysLeft: Math.floor((c.notAfter - now) / DAY),
    status: c.status === "valid" && expired ? "expired" : c.status,
    profile: c.profile,
    requester: c.requester,
    createdAt: iso(c.createdAt),
    revokedAt: iso(c.revokedAt),
    revocationReason: c.revocationReason,
    supersededBy: c.supersededBy,
  };
}

export function certDetail(c: CertRecord, now = Date.now()) {
  const cert = new x509.X509Certificate(new Uint8Array(c.der));
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const kuNames = ku
    ? Object.entries(x509.KeyUsageFlags)
        .filter(([, v]) => typeof v === "number" && (ku.usages & (v as number)) !== 0)
        .map(([k]) => k)
    : [];
  const alg = cert.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  const sig = cert.signatureAlgorithm as { name: string; hash?: { name: string } };
  return {
    ...certSummary(c, now),
    issuer: cert.issuer,
    publicKey: alg.namedCurve ? `${alg.name} ${alg.namedCurve}` : alg.modulusLength ? `${alg.name} ${alg.modulusLength} bit` : alg.name,
    signatureAlgorithm: sig.hash ? `${sig.name} with ${sig.hash.name}` : sig.name,
    keyUsage: kuNames,
    extendedKeyUsage: eku ? eku.usages.map((u) => EKU_BY_OID[String(u)] ?? String(u)) : [],
    sha256Fingerprint: createHash("sha256").update(c.der).digest("hex").replace(/(..)(?!$)/g, "$1:"),
    spkiSha256: c.spkiSha256,
    pem: toPem(c.der, "CERTIFICATE"),
  };
}

export function enrollmentView(e: Enrollment) {
  return {
    id: e.id,
    createdAt: iso(e.createdAt),
    updatedAt: iso(e.updatedAt),
    profile: e.profile,
    operation: e.operation,
    requester: e.requester,
    subject: e.subject,
    sans: e.sans,
    spkiSha256: e.spkiSha256,
    state: e.state,
    reason: e.reason,
    decidedBy: e.decidedBy,
    serial: e.serial,
  };
}

export function requestView(r: RequestLogEntry) {
  return { ...r, at: iso(r.at) };
}

export function userView(u: UserRecord) {
  return { name: u.name, labels: u.labels.length ? u.labels : ["default"], createdAt: iso(u.createdAt) };
}

/** Copy-paste command lines for a device, for the EST base URL the administrator reached us at. */
export function clientCommands(origin: string) {
  const base = `${origin}/.well-known/est`;
  const user = "USER:PASSWORD";
  return {
    curl: [
      `# 1. trust anchor: ca.pem (download it above), then the CA certificates over EST`,
      `curl -sS --fail-with-body --cacert ca.pem ${base}/cacerts \\`,
      `  | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem`,
      ``,
      `# 2. a key and a certificate request`,
      `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\`,
      `  -keyout device.key -subj "/CN=device.example" \\`,
      `  -addext "subjectAltName=DNS:device.example" -out device.csr`,
      ``,
      `# 3. enroll; the answer is a base64 certs-only PKCS#7`,
      `openssl req -in device.csr -outform DER | openssl base64 \\`,
      `  | curl -sS --fail-with-body --cacert ca.pem -u ${shellQuote(user)} \\`,
      `      -H "Content-Type: application/pkcs10" --data-binary @- ${base}/simpleenroll \\`,
      `  | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out device.pem`,
    ].join("\n"),
    strongswan: [
      `# 1. a key and a certificate request`,
      `pki --gen --type ecdsa --size 256 --outform pem > device.key`,
      `pki --req --type priv --in device.key --dn "CN=device.example" \\`,
      `  --san device.example --outform pem > device.csr`,
      ``,
      `# 2. enroll (pki adds /.well-known/est/simpleenroll to the URL)`,
      `pki --est --url ${origin} --cacert ca.pem \\`,
      `  --userpass ${shellQuote(user)} --in device.csr --outform pem > device.pem`,
    ].join("\n"),
  };
}

/**
 * Where the root key rollover stands: a journal means one is under way (see ca/rollover.ts);
 * active link certificates mean the overlap after one, when clients that know only the old
 * root are still served the chain to the new one.
 */
function rolloverState(s: Services, now: number): { state: string; detail: string } {
  const raw = s.store.meta.get("rollover");
  if (raw) {
    try {
      const j = JSON.parse(raw) as { state?: string; generation?: number; startedAt?: string };
      return { state: `in progress (${j.state ?? "?"})`, detail: `to generation ${j.generation ?? "?"}, started ${j.startedAt ?? "?"}` };
    } catch {
      return { state: "journal unreadable", detail: raw.slice(0, 80) };
    }
  }
  const links = s.store.caCerts.all().filter((c) => (c.role === "oldWithNew" || c.role === "newWithOld") && c.status === "active" && c.notAfter > now);
  if (links.length) {
    const until = Math.max(...links.map((l) => l.notAfter));
    return { state: "overlap", detail: `rollover links to generation ${links[0].generation} are served until ${new Date(until).toISOString().slice(0, 10)}` };
  }
  return { state: "none", detail: `generation ${s.ca.issuer.generation} is the only active root` };
}

/** Issuance per day for the last `days` days, days without issuance included as 0. */
function issuanceSeries(s: Services, days: number, now = Date.now()) {
  const got = new Map(s.store.certs.issuancePerDay(days, now).map((d) => [d.day, d.count]));
  const out: { day: string; count: number }[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(now - i * DAY).toISOString().slice(0, 10);
    out.push({ day, count: got.get(day) ?? 0 });
  }
  return out;
}

export function dashboard(s: Services, origin: string, now = Date.now()) {
  const iss = s.ca.issuer;
  const ref = iss.key.ref;
  const notAfter = iss.cert.notAfter.getTime();
  const labels = Object.entries(s.config.profiles).map(([name, p]) => ({
    label: name,
    url: name === "default" ? `${origin}/.well-known/est/` : `${origin}/.well-known/est/${name}/`,
    description: p.description,
    approval: p.approval,
    auth: p.auth,
  }));
  return {
    ca: {
      subject: iss.cert.subject,
      serial: iss.cert.serialNumber.toLowerCase(),
      generation: iss.generation,
      notBefore: iss.cert.notBefore.toISOString(),
      notAfter: iss.cert.notAfter.toISOString(),
      daysLeft: Math.floor((notAfter - now) / DAY),
      sha256Fingerprint: createHash("sha256").update(iss.der).digest("hex").replace(/(..)(?!$)/g, "$1:"),
    },
    key: {
      label: ref.label,
      keyType: ref.keyType,
      mechanism: mechanismOf(ref.keyType, iss.key.hash),
      module: s.km.info.module,
      tokenLabel: s.km.info.tokenLabel,
      manufacturer: s.km.info.manufacturer,
      model: s.km.info.model,
    },
    rollover: rolloverState(s, now),
    caCertificates: s.store.caCerts.all().map((c) => ({ generation: c.generation, role: c.role, status: c.status, subject: c.subject, serial: c.serial, notAfter: iso(c.notAfter) })),
    est: { baseUrl: `${origin}/.well-known/est/`, labels },
    // As written into the certificates this CA issues.
    revocation: { crl: crlUrl(s.ca.httpBaseUrl, iss.generation), ocsp: ocspUrl(s.ca.httpBaseUrl) },
    commands: clientCommands(origin),
    counts: { ...s.store.certs.counts(now), pending: s.store.enrollments.countPending() },
    issuance: issuanceSeries(s, 30, now),
  };
}
