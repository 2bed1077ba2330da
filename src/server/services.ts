import type { CertificateAuthority } from "../ca/authority.ts";
import type { Config } from "../config/schema.ts";
import type { DataPaths } from "../config/paths.ts";
import type { KeyManager } from "../hsm/key-manager.ts";
import type { Logger } from "../log.ts";
import type { RegistrationAuthority } from "../ra/registration-authority.ts";
import type { RequestLogEntry, Store } from "../store/index.ts";
import type { Metrics } from "./metrics.ts";

/** What the HTTP edges are given to work with. Each edge uses only what it needs. */
export interface Services {
  config: Config;
  paths: DataPaths;
  km: KeyManager;
  store: Store;
  ca: CertificateAuthority;
  ra: RegistrationAuthority;
  log: Logger;
  /** The https origin of the EST listener, e.g. https://localhost:8443 */
  estOrigin: string;
  /** Told of every finished EST request after it is logged (metrics); must not throw. */
  onEstRequest?: (entry: RequestLogEntry) => void;
  metrics?: Metrics;
}
