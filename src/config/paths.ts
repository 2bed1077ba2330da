import { join, resolve } from "node:path";

/** Where each piece of an instance's state lives inside its data directory. */
export interface DataPaths {
  dir: string;
  config: string;
  db: string;
  caPem: string;
  tlsDir: string;
  tlsKey: string;
  tlsCert: string;
  hsmPin: string;
  hsmSoPin: string;
  softhsmConf: string;
  tokens: string;
  lock: string;
}

export function dataPaths(dir: string): DataPaths {
  const d = resolve(dir);
  return {
    dir: d,
    config: join(d, "config.yaml"),
    db: join(d, "estca.db"),
    caPem: join(d, "ca.pem"),
    tlsDir: join(d, "tls"),
    tlsKey: join(d, "tls", "server.key"),
    tlsCert: join(d, "tls", "server.pem"),
    hsmPin: join(d, "hsm-pin"),
    hsmSoPin: join(d, "hsm-so-pin"),
    softhsmConf: join(d, "softhsm2.conf"),
    tokens: join(d, "tokens"),
    lock: join(d, "estca.lock"),
  };
}
