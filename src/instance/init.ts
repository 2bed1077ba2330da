import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { CertificateAuthority } from "../ca/authority.ts";
import { parseConfig, writeConfig } from "../config/load.ts";
import { dataPaths } from "../config/paths.ts";
import type { Config } from "../config/schema.ts";
import { configError } from "../errors.ts";
import type { KeyType } from "../hsm/key-manager.ts";
import { Pkcs11KeyManager } from "../hsm/pkcs11-key-manager.ts";
import { initSoftHsmToken } from "../hsm/softhsm.ts";
import { generatePassword, hashPassword } from "../ra/passwords.ts";
import { Store } from "../store/index.ts";
import { httpBaseUrl, readPin } from "./open.ts";
import { issueListenerCert, writeTrustAnchors } from "./tls.ts";

export interface InitOptions {
  keyType?: KeyType;
  caName?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  port?: number;
  httpPort?: number;
  host?: string;
  /** Name of the first EST user; its password is generated and returned once. */
  estUser?: string;
  /**
   * Use an existing token of any PKCS#11 module instead of creating a project-local SoftHSM
   * token. The PIN must then come from ESTCA_HSM_PIN; estca never stores it.
   */
  pkcs11Module?: string;
  tokenLabel?: string;
}

export interface InitResult {
  created: boolean;
  dir: string;
  estUser?: { name: string; password: string };
  admin?: { name: string; password: string };
}

const CONFIG_HEADER = `# estca configuration. Edit and restart; the file is validated at start and a bad key is named.
# Profiles: the unlabelled EST path uses 'default'; /.well-known/est/LABEL/... uses profile LABEL.
# Reference: docs/CONFIG.md`;

export function defaultConfig(o: InitOptions): Config {
  return parseConfig({
    ca: { name: o.caName ?? "estca Root CA", keyType: o.keyType ?? "ec-p256" },
    hsm: o.pkcs11Module
      ? { module: o.pkcs11Module, tokenLabel: o.tokenLabel ?? "estca", projectLocalSoftHsm: false }
      : { tokenLabel: o.tokenLabel ?? "estca" },
    server: { host: o.host ?? "0.0.0.0", port: o.port ?? 8443, httpPort: o.httpPort ?? 8080 },
    tls: { dnsNames: o.dnsNames ?? [], ipAddresses: o.ipAddresses ?? [] },
    profiles: {
      default: { description: "Device certificates for TLS clients" },
      server: {
        description: "TLS server certificates",
        extendedKeyUsage: ["serverAuth"],
        sanTypes: ["dns", "ip"],
      },
      manual: { description: "Held for an administrator's approval", approval: "manual" },
    },
  });
}

/**
 * Creates a data directory from nothing. On an initialized directory it changes nothing.
 * If any step fails, what this call created is removed, so a retry starts clean.
 */
export async function initInstance(dir: string, o: InitOptions = {}): Promise<InitResult> {
  const paths = dataPaths(dir);
  if (existsSync(paths.config)) return { created: false, dir: paths.dir };
  const existed = existsSync(paths.dir);
  if (existed && readdirSync(paths.dir).filter((f) => f !== "README.md" && f !== ".gitkeep").length > 0) {
    throw configError(`${paths.dir} is not empty and holds no config.yaml: it is not an estca data directory; choose an empty one`);
  }
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const created: string[] = [];
  const track = (p: string) => (created.push(p), p);
  try {
    const config = defaultConfig(o);
    let pin: string;
    if (config.hsm.projectLocalSoftHsm) {
      pin = process.env.ESTCA_HSM_PIN || randomBytes(12).toString("hex");
      const soPin = process.env.ESTCA_HSM_SO_PIN || randomBytes(12).toString("hex");
      if (!process.env.ESTCA_HSM_PIN) writeFileSync(track(paths.hsmPin), pin + "\n", { mode: 0o600 });
      if (!process.env.ESTCA_HSM_SO_PIN) writeFileSync(track(paths.hsmSoPin), soPin + "\n", { mode: 0o600 });
      track(paths.tokens);
      track(paths.softhsmConf);
      initSoftHsmToken(paths.dir, config.hsm.tokenLabel, soPin, readPin(paths, "user"));
    } else {
      if (!process.env.ESTCA_HSM_PIN) throw configError(`--pkcs11-module needs the token's user PIN in ESTCA_HSM_PIN`);
      pin = process.env.ESTCA_HSM_PIN;
    }

    for (const f of [paths.db, `${paths.db}-wal`, `${paths.db}-shm`, paths.tlsDir, paths.caPem]) track(f);
    const store = Store.open(paths.db, { create: true });
    const km = Pkcs11KeyManager.open({ module: config.hsm.module, tokenLabel: config.hsm.tokenLabel, pin });
    try {
      const ca = new CertificateAuthority(km, store, { httpBaseUrl: httpBaseUrl(config) });
      await ca.createRoot({ name: `CN=${config.ca.name}`, keyType: config.ca.keyType, validityDays: config.ca.validityDays });
      await issueListenerCert(ca, config, paths);
      writeTrustAnchors(ca, paths);

      const estUser = { name: o.estUser ?? "est", password: generatePassword() };
      store.users.add({ name: estUser.name, passwordHash: hashPassword(estUser.password), labels: [], role: "est" });
      const admin = { name: "admin", password: process.env.ESTCA_ADMIN_PASSWORD || generatePassword() };
      store.users.add({ name: admin.name, passwordHash: hashPassword(admin.password), labels: [], role: "admin" });

      // The config is written last: its presence is what marks the directory as initialized.
      writeConfig(paths.config, config, CONFIG_HEADER);
      return { created: true, dir: paths.dir, estUser, admin };
    } finally {
      store.close();
      km.close();
    }
  } catch (e) {
    for (const p of created.reverse()) rmSync(p, { recursive: true, force: true });
    if (!existed) rmSync(paths.dir, { recursive: true, force: true });
    throw e;
  }
}
