// Shared test harness: real processes, real token, real TLS. Nothing here is mocked.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..");
export const ESTCA = join(ROOT, "bin", "estca.js");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program as a separate process without blocking the event loop. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; encoding?: "utf8" | "buffer" } = {}): Promise<RunResult> {
  return new Promise((res) => {
    const child = execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
        res({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin?.end();
  });
}

/** Runs a program and returns stdout as bytes (for DER output). */
export function runBinary(cmd: string, args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((res) => {
    const child = execFile(cmd, args, { encoding: "buffer", maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      res({ code, stdout: stdout as Buffer, stderr: (stderr as Buffer).toString() });
    });
    if (input) child.stdin!.end(input);
    else child.stdin?.end();
  });
}

export function estca(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run(process.execPath, [ESTCA, ...args], { input: opts.input, env: { ...process.env, ...opts.env } });
}

export function tempDir(prefix = "estca-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface InitResult {
  dir: string;
  estPassword: string;
  adminPassword: string;
}

/** `estca init` in a fresh temporary directory; returns the printed credentials. */
export async function initData(extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<InitResult> {
  const dir = join(tempDir(), "data");
  const r = await estca(["init", "--data", dir, ...extra], { env });
  if (r.code !== 0) throw new Error(`estca init failed: ${r.stderr}`);
  const est = r.stdout.match(/EST user:\s+\S+\s+password: (\S+)/);
  const admin = r.stdout.match(/UI admin:\s+\S+\s+password: (\S+)/);
  if (!est || !admin) throw new Error(`estca init printed no credentials: ${r.stdout}`);
  return { dir, estPassword: est[1], adminPassword: admin[1] };
}

export interface Server {
  dir: string;
  proc: ChildProcess;
  estBase: string;
  /** https://localhost:PORT */
  origin: string;
  port: number;
  httpBase: string;
  httpPort: number;
  caPem: string;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts `estca start` as a child process on free ports and waits until it serves. */
export function startServer(dir: string, opts: { env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<Server> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, [ESTCA, "start", "--data", dir, "--host", "127.0.0.1", "--port", "0", "--http-port", "0", ...(opts.args ?? [])], {
      env: { ...process.env, ESTCA_LOG_LEVEL: "info", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const est = out.match(/EST base URL:\s+(https:\/\/\S+:(\d+))(\/\S*)/);
      const http = out.match(/CRL\/OCSP\/metrics:\s+(http:\/\/\S+:(\d+))\//);
      if (est && http && !resolved) {
        resolved = true;
        clearTimeout(timer);
        const origin = est[1].replace("127.0.0.1", "localhost");
        res({
          dir,
          proc,
          estBase: origin + est[3],
          origin,
          port: Number(est[2]),
          httpBase: http[1].replace("127.0.0.1", "localhost"),
          httpPort: Number(http[2]),
          caPem: join(dir, "ca.pem"),
          output: () => out,
          stop: (signal: NodeJS.Signals = "SIGTERM") =>
            new Promise((r) => {
              if (proc.exitCode !== null) return r(proc.exitCode);
              proc.once("exit", (code) => r(code));
              proc.kill(signal);
            }),
        });
      }
    };
    let resolved = false;
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.once("exit", (code) => {
      if (!resolved) {
        clearTimeout(timer);
        rej(new Error(`estca start exited with ${code}: ${out}`));
      }
    });
    const timer = setTimeout(() => {
      if (!resolved) {
        proc.kill("SIGKILL");
        rej(new Error(`estca start did not come up in 30 s: ${out}`));
      }
    }, 30_000);
  });
}

export type KeySpec = "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072" | "ed25519";

/** Makes a key and a CSR with openssl; returns file paths and the CSR as base64 and PEM. */
export async function makeCsr(
  dir: string,
  name: string,
  opts: { key?: KeySpec; subject?: string; sans?: string[]; challengePassword?: string; keyFile?: string } = {},
): Promise<{ keyFile: string; csrPem: string; csrDer: Buffer; csrB64: string; csrFile: string }> {
  const keyFile = opts.keyFile ?? join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const key = opts.key ?? "ec-p256";
  if (!opts.keyFile) {
    const args =
      key === "ed25519"
        ? ["genpkey", "-algorithm", "ed25519", "-out", keyFile]
        : key.startsWith("rsa")
          ? ["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${key.split("-")[1]}`, "-out", keyFile]
          : ["genpkey", "-algorithm", "EC", "-pkeyopt", `ec_paramgen_curve:${key === "ec-p256" ? "P-256" : "P-384"}`, "-out", keyFile];
    const g = await run("openssl", args);
    if (g.code !== 0) throw new Error(g.stderr);
  }
  const cfg = join(dir, `${name}.cnf`);
  const lines = ["[req]", "distinguished_name=dn", "prompt=no", "[dn]"];
  writeFileSync(cfg, lines.join("\n") + "\n");
  const args = ["req", "-new", "-key", keyFile, "-config", cfg, "-subj", opts.subject ?? `/CN=${name}`, "-out", csrFile];
  for (const s of opts.sans ?? []) args.push("-addext", `subjectAltName=${s}`);
  if (opts.challengePassword !== undefined) {
    writeFileSync(cfg, [...lines, "[attrs]", `challengePassword=${opts.challengePassword}`].join("\n").replace("prompt=no", "prompt=no\nattributes=attrs") + "\n");
  }
  const r = await run("openssl", args);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  const d = await runBinary("openssl", ["req", "-in", csrFile, "-outform", "DER"]);
  const { readFileSync } = await import("node:fs");
  return { keyFile, csrPem: readFileSync(csrFile, "utf8"), csrDer: d.stdout, csrB64: d.stdout.toString("base64"), csrFile };
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  /** Header lines as received, with their original spelling. */
  rawHeaders: string;
  body: Buffer;
  text: string;
  curlStderr: string;
}

/** One request with real curl, as an EST client would make it. */
export async function curl(
  url: string,
  opts: {
    method?: string;
    user?: string;
    body?: string | Buffer;
    contentType?: string;
    headers?: string[];
    cacert?: string;
    cert?: string;
    key?: string;
    tls?: "1.2" | "1.3";
    chunked?: boolean;
    anyAuth?: boolean;
    extra?: string[];
  } = {},
): Promise<HttpResult> {
  const dir = tempDir("estca-curl-");
  const { readFileSync } = await import("node:fs");
  const hdrFile = join(dir, "h");
  const outFile = join(dir, "b");
  const args = ["-sS", "-o", outFile, "-D", hdrFile, "-w", "%{http_code}", "--max-time", "30"];
  if (opts.cacert) args.push("--cacert", opts.cacert);
  else args.push("-k");
  if (opts.method) args.push("-X", opts.method);
  if (opts.user) args.push(opts.anyAuth ? "--anyauth" : "--basic", "-u", opts.user);
  if (opts.cert) args.push("--cert", opts.cert);
  if (opts.key) args.push("--key", opts.key);
  if (opts.tls === "1.2") args.push("--tlsv1.2", "--tls-max", "1.2");
  if (opts.tls === "1.3") args.push("--tlsv1.3");
  if (opts.contentType) args.push("-H", `Content-Type: ${opts.contentType}`);
  if (opts.chunked) args.push("-H", "Transfer-Encoding: chunked");
  for (const h of opts.headers ?? []) args.push("-H", h);
  if (opts.body !== undefined) {
    const bodyFile = join(dir, "req");
    writeFileSync(bodyFile, opts.body);
    args.push("--data-binary", `@${bodyFile}`);
  }
  args.push(...(opts.extra ?? []), url);
  const r = await run("curl", args);
  let rawHeaders = "";
  let body = Buffer.alloc(0);
  try {
    rawHeaders = readFileSync(hdrFile, "latin1");
    body = readFileSync(outFile);
  } catch {
    /* connection failed: status 0 */
  }
  // With --anyauth there are two responses; the last block is the one that counts.
  const blocks = rawHeaders.split(/\r\n\r\n/).filter((b) => b.trim());
  const last = blocks[blocks.length - 1] ?? "";
  const headers: Record<string, string> = {};
  for (const line of last.split("\r\n").slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  cleanup(dir);
  return { status: Number(r.stdout.trim()) || 0, headers, rawHeaders: last, body, text: body.toString("utf8"), curlStderr: r.stderr };
}

/** Decodes a base64 certs-only answer and prints its certificates with openssl, PEM. */
export async function certsFromCertsOnly(b64Body: Buffer | string): Promise<string> {
  const der = Buffer.from(b64Body.toString(), "base64");
  const r = await runBinary("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], der);
  if (r.code !== 0) throw new Error(`openssl pkcs7 failed: ${r.stderr}`);
  return r.stdout.toString();
}
