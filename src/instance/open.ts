import { existsSync, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { CertificateAuthority } from "../ca/authority.ts";
import type { Config } from "../config/schema.ts";
import { loadConfig } from "../config/load.ts";
import { type DataPaths, dataPaths } from "../config/paths.ts";
import { configError } from "../errors.ts";
import type { KeyManager } from "../hsm/key-manager.ts";
import { Pkcs11KeyManager } from "../hsm/pkcs11-key-manager.ts";
import { useProjectLocalSoftHsm } from "../hsm/softhsm.ts";
import { Store } from "../store/index.ts";

/** One opened data directory: its config, token, store and CA, ready to serve or to administer. */
export interface Instance {
  paths: DataPaths;
  config: Config;
  km: KeyManager;
  store: Store;
  ca: CertificateAuthority;
  close(): void;
}

export function isInitialized(dir: string): boolean {
  return existsSync(dataPaths(dir).config);
}

export function readPin(paths: DataPaths, kind: "user" | "so"): string {
  const env = kind === "user" ? process.env.ESTCA_HSM_PIN : process.env.ESTCA_HSM_SO_PIN;
  if (env) return env;
  const file = kind === "user" ? paths.hsmPin : paths.hsmSoPin;
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    throw configError(`the token PIN is neither in ESTCA_HSM_PIN nor in ${file}: set the variable or restore the file`);
  }
}

/** The base URL for CRL and OCSP links: the configured one, else this host on the http port. */
export function httpBaseUrl(config: Config): string {
  if (config.server.publicHttpUrl) return config.server.publicHttpUrl.replace(/\/+$/, "");
  return `http://${hostname() || "localhost"}:${config.server.httpPort}`;
}

export function openInstance(dir: string, overrides: (c: Config) => Config = (c) => c): Instance {
  const paths = dataPaths(dir);
  if (!existsSync(paths.dir)) throw configError(`data directory ${paths.dir} does not exist: run \`estca init --data ${dir}\``);
  if (!statSync(paths.dir).isDirectory()) throw configError(`${paths.dir} is not a directory`);
  if (!existsSync(paths.config)) {
    throw configError(`${paths.dir} is not an initialized estca data directory (no config.yaml): run \`estca init --data ${dir}\``);
  }
  const config = overrides(loadConfig(paths.config));
  if (config.hsm.projectLocalSoftHsm) {
    if (!existsSync(paths.softhsmConf) || !existsSync(paths.tokens)) {
      throw configError(`the SoftHSM token of ${paths.dir} is missing (${paths.tokens}): restore it from a backup; without it the CA key is lost`);
    }
    useProjectLocalSoftHsm(paths.dir);
  }
  const pin = readPin(paths, "user");
  const store = Store.open(paths.db, { create: false });
  let km: KeyManager;
  try {
    km = Pkcs11KeyManager.open({ module: config.hsm.module, tokenLabel: config.hsm.tokenLabel, pin });
  } catch (e) {
    store.close();
    throw e;
  }
  const ca = new CertificateAuthority(km, store, { httpBaseUrl: httpBaseUrl(config) });
  if (!ca.initialized) {
    km.close();
    store.close();
    throw configError(`the store in ${paths.db} holds no active CA root: the data directory is incomplete; restore it or re-run init on an empty directory`);
  }
  return {
    paths,
    config,
    km,
    store,
    ca,
    close() {
      store.close();
      km.close();
    },
  };
}
