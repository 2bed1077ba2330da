// Helpers shared by the EST front-end tests (test/est-*.test.ts). Real processes only.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { type HttpResult, type InitResult, type Server, certsFromCertsOnly, cleanup, estca, initData, run, startServer } from "./harness.ts";
import type { RequestLogEntry } from "../../src/store/index.ts";

/** Rewrites DIR/config.yaml before a start, as an operator would. */
export function editConfig(dir: string, fn: (c: Record<string, any>) => void): void {
  const p = join(dir, "config.yaml");
  const c = YAML.parse(readFileSync(p, "utf8"));
  fn(c);
  writeFileSync(p, YAML.stringify(c), { mode: 0o600 });
}

export interface EstFixture {
  inst: InitResult;
  srv: Server;
  /** "est:PASSWORD" */
  userpass: string;
  stop: () => Promise<void>;
}

/** A fresh data directory, optionally with an edited config, and a server on it. */
export async function estFixture(configure?: (c: Record<string, any>, dir: string) => void): Promise<EstFixture> {
  const inst = await initData();
  if (configure) editConfig(inst.dir, (c) => configure(c, inst.dir));
  const srv = await startServer(inst.dir);
  return {
    inst,
    srv,
    userpass: `est:${inst.estPassword}`,
    stop: async () => {
      await srv.stop();
      cleanup(join(inst.dir, ".."));
    },
  };
}

/** The PEM certificate of a certs-only answer, written to `file`, and its serial (lower-case hex). */
export async function saveCert(r: HttpResult | Buffer | string, file: string): Promise<{ pem: string; serial: string }> {
  const body = typeof r === "string" || Buffer.isBuffer(r) ? r : r.body;
  const pem = await certsFromCertsOnly(body);
  writeFileSync(file, pem);
  const s = await run("openssl", ["x509", "-in", file, "-noout", "-serial"]);
  return { pem, serial: s.stdout.trim().split("=")[1].toLowerCase().replace(/^0+/, "") };
}

/** What `estca requests --json` prints: the store's own record type. */
export type LogEntry = RequestLogEntry;

/** The request log as `estca requests --json` prints it, newest first. */
export async function requestLog(dir: string, limit = 20): Promise<LogEntry[]> {
  const r = await estca(["requests", "--json", "--limit", String(limit), "--data", dir]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** The certificate as `estca show SERIAL --json` prints it. */
export async function showCert(dir: string, serial: string): Promise<Record<string, any>> {
  const r = await estca(["show", serial, "--data", dir, "--json"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** strongSwan's `pki`, with the noise of its unused TPM plugin left out. */
export async function pki(args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await run("pki", args, { timeoutMs: 60_000, env });
  return { ...r, stderr: r.stderr.split("\n").filter((l) => !/tpm|TPM/.test(l)).join("\n") };
}

/** Wraps base64 at `width` columns with `eol`. */
export function wrap(b64: string, width: number, eol = "\n"): string {
  return (b64.match(new RegExp(`.{1,${width}}`, "g")) ?? []).join(eol) + eol;
}

/** A client-side CSR built with @peculiar/x509, for attributes openssl req cannot write. */
export async function x509Csr(opts: {
  subject: string;
  sans?: { type: "dns" | "ip" | "email" | "url"; value: string }[];
  attributes?: import("@peculiar/x509").Attribute[];
  keys?: CryptoKeyPair;
  alg?: "ec-p256" | "rsa-2048";
}): Promise<{ der: Buffer; b64: string; keys: CryptoKeyPair; keyPem: string }> {
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  const { webcrypto } = await import("node:crypto");
  const alg =
    opts.alg === "rsa-2048"
      ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 }
      : { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = opts.keys ?? ((await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: opts.subject,
      keys,
      signingAlgorithm: alg,
      extensions: opts.sans?.length ? [new x509.SubjectAlternativeNameExtension(opts.sans)] : [],
      attributes: opts.attributes ?? [],
    },
    webcrypto as unknown as Crypto,
  );
  const der = Buffer.from(csr.rawData);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as never));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${wrap(pkcs8.toString("base64"), 64)}-----END PRIVATE KEY-----\n`;
  return { der, b64: der.toString("base64"), keys, keyPem };
}
