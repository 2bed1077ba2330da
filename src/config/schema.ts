import { z } from "zod";
import { KEY_TYPES } from "../hsm/key-manager.ts";

export const KEY_USAGES = [
  "digitalSignature",
  "nonRepudiation",
  "keyEncipherment",
  "dataEncipherment",
  "keyAgreement",
  "keyCertSign",
  "cRLSign",
  "encipherOnly",
  "decipherOnly",
] as const;

/** Names for the common extended key usages; any dotted OID is accepted too. */
export const EKU_NAMES: Record<string, string> = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  codeSigning: "1.3.6.1.5.5.7.3.3",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  timeStamping: "1.3.6.1.5.5.7.3.8",
  ocspSigning: "1.3.6.1.5.5.7.3.9",
  ipsecIKE: "1.3.6.1.5.5.7.3.17",
  cmcRA: "1.3.6.1.5.5.7.3.28",
};

export const SAN_TYPES = ["dns", "ip", "email", "uri"] as const;
export type SanType = (typeof SAN_TYPES)[number];

/** Key types a CSR (or serverkeygen) may use. */
export const CSR_KEY_TYPES = ["rsa", "ec-p256", "ec-p384", "ed25519"] as const;

const oid = z.string().regex(/^\d+(\.\d+)+$/, "must be a dotted OID");

const csrAttr = z.union([
  z.string().min(1),
  z.object({
    attribute: z.string().min(1),
    values: z.array(z.string()).default([]),
  }),
]);

export const profileSchema = z
  .object({
    description: z.string().default(""),
    validityDays: z.number().int().positive().max(36500).default(365),
    keyUsage: z.array(z.enum(KEY_USAGES)).default(["digitalSignature", "keyEncipherment"]),
    extendedKeyUsage: z
      .array(z.string().refine((s) => s in EKU_NAMES || oid.safeParse(s).success, "must be an EKU name or a dotted OID"))
      .default(["clientAuth"]),
    sanTypes: z.array(z.enum(SAN_TYPES)).default(["dns", "ip", "email", "uri"]),
    subject: z
      .object({
        requireCommonName: z.boolean().default(true),
        /** A JavaScript regular expression the commonName must match, anchored by you. */
        commonNamePattern: z.string().optional(),
        /** Attributes a CSR subject may carry; others are refused. */
        allowedAttributes: z.array(z.string()).default(["CN", "O", "OU", "C", "ST", "L", "serialNumber", "E", "DC"]),
      })
      .prefault({}),
    keyTypes: z.array(z.enum(CSR_KEY_TYPES)).default(["rsa", "ec-p256", "ec-p384", "ed25519"]),
    /** How clients may authenticate: HTTP Basic, a TLS client certificate, or both. */
    auth: z.array(z.enum(["basic", "cert"])).min(1).default(["basic", "cert"]),
    /** PEM files (relative to the data directory) of external CAs whose certificates may enrol here. */
    externalTrustAnchors: z.array(z.string()).default([]),
    approval: z.enum(["auto", "manual"]).default("auto"),
    channelBinding: z.enum(["off", "optional", "required"]).default("optional"),
    allowChangeSubjectName: z.boolean().default(false),
    /** Attributes listed by /csrattrs: names (challengePassword, ec-p256, sha256, ...) or raw OID/values. */
    csrattrs: z.array(csrAttr).default([]),
    serverKeygen: z
      .object({
        enabled: z.boolean().default(true),
        defaultKeyType: z.enum(["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384"]).default("ec-p256"),
      })
      .prefault({}),
  })
  .strict();

export type Profile = z.infer<typeof profileSchema>;

export const configSchema = z
  .object({
    ca: z
      .object({
        name: z.string().min(1).default("estca Root CA"),
        keyType: z.enum(KEY_TYPES).default("ec-p256"),
        validityDays: z.number().int().positive().default(3650),
      })
      .strict()
      .prefault({}),
    hsm: z
      .object({
        module: z.string().min(1).default("/usr/lib/softhsm/libsofthsm2.so"),
        tokenLabel: z.string().min(1).max(32).default("estca"),
        /** True when estca made and owns a SoftHSM token inside the data directory. */
        projectLocalSoftHsm: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    server: z
      .object({
        host: z.string().default("0.0.0.0"),
        port: z.number().int().min(0).max(65535).default(8443),
        httpPort: z.number().int().min(0).max(65535).default(8080),
        /** Base URL written into certificates for the CRL and OCSP; set it behind a proxy. */
        publicHttpUrl: z.string().url().optional(),
        bodyLimit: z.number().int().positive().default(65536),
        headersTimeoutMs: z.number().int().positive().default(10000),
        requestTimeoutMs: z.number().int().positive().default(30000),
        keepAliveTimeoutMs: z.number().int().positive().default(5000),
        retryAfterSeconds: z.number().int().positive().default(60),
        /**
         * Worker threads that parse CSRs and check their signatures. Unset: one on a machine with
         * two or more cores (none in `--workers` processes, which already use the cores).
         */
        csrThreads: z.number().int().min(0).max(16).optional(),
      })
      .strict()
      .prefault({}),
    crl: z
      .object({
        validityHours: z.number().positive().default(24),
        /** Regenerate this long before nextUpdate. */
        refreshBeforeHours: z.number().positive().default(6),
      })
      .strict()
      .prefault({}),
    ocsp: z
      .object({
        /** Sign answers with a delegated responder certificate (id-pkix-ocsp-nocheck) instead of the CA key. */
        delegated: z.boolean().default(true),
        validityMinutes: z.number().positive().default(60),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        dnsNames: z.array(z.string()).default([]),
        ipAddresses: z.array(z.string()).default([]),
      })
      .strict()
      .prefault({}),
    /** Basic-auth failure throttling: after this many failures in the window, 429 until the lockout ends. */
    security: z
      .object({
        authFailuresPerUser: z.number().int().positive().default(5),
        authFailuresPerAddress: z.number().int().positive().default(20),
        authFailureWindowSeconds: z.number().int().positive().default(300),
        authLockoutSeconds: z.number().int().positive().default(300),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        sessionMinutes: z.number().positive().default(480),
      })
      .strict()
      .prefault({}),
    profiles: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, "profile names are letters, digits, - and _"), profileSchema).refine((p) => "default" in p, {
      message: "a profile named 'default' is required: it serves the unlabelled EST path",
    }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
