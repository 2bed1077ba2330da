// `npm run bench`: a self-contained throughput benchmark of estca (issue 6, docs/PERFORMANCE.md).
//
// It initializes a fresh data directory (default profile, ECDSA P-256 CA key in SoftHSM), adds a
// user "bench", starts `estca start` as its own process and drives it with wrk (a separate
// process) in three modes: enrollment over keep-alive connections, enrollment with a new TLS
// connection per request, and GET /cacerts over keep-alive. In the same run it measures two
// ceilings: the token's raw ECDSA P-256 signing rate (one pkcs11js session, one process) and a
// bare Node https server answering a fixed 1 KB body. It prints every figure against its ceiling
// or target and ends with ONE line of JSON holding every figure.
//
// Options: --seconds N (per mode, default 10), --connections N (16), --threads N (wrk, 1: on two
// cores a second wrk thread takes more from the server than it adds),
// --rounds N (repeat the three modes N times on the same server, to watch RSS; default 1),
// --seed N (put N certificates in the store first, with scripts/seed.ts), --copy-from DIR (start
// from a copy of an already seeded, stopped data directory instead of a new one), --workers N (passed to
// the server as ESTCA_WORKERS), --cpu-prof (server writes .cpuprofile files into the temp dir),
// --keep (keep the temp dir), --modes a,b,c (subset of enroll-keepalive,enroll-newconn,cacerts).
import "reflect-metadata";
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { webcrypto } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as x509 from "@peculiar/x509";
import Database from "better-sqlite3";
import { certsOf } from "../src/pki/cms.ts";

const ROOT = resolve(import.meta.dirname, "..");
const ESTCA = join(ROOT, "bin", "estca.js");
const TSX = ["--import", "tsx"];
const P99_TARGET_MS = 20;
const RSS_TARGET_MB = 250;

const { values: opt } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "16" },
    threads: { type: "string", default: "1" },
    rounds: { type: "string", default: "1" },
    seed: { type: "string", default: "0" },
    "copy-from": { type: "string" },
    workers: { type: "string" },
    modes: { type: "string", default: "enroll-keepalive,enroll-newconn,cacerts" },
    "cpu-prof": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});
const SECONDS = Number(opt.seconds);
const CONNS = Number(opt.connections);
const THREADS = Number(opt.threads);
const ROUNDS = Number(opt.rounds);
const SEED = Number(opt.seed);
const MODES = opt.modes!.split(",");
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

function wrkVersion(): string {
  // `wrk -v` prints its version and exits 1.
  try {
    return execFileSync("wrk", ["-v"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0];
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? "").split("\n")[0] || "wrk";
  }
}

function log(s: string): void {
  process.stderr.write(s + "\n");
}

function runNode(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((res, rej) => {
    const c = execFile(process.execPath, args, { env: { ...process.env, ...env }, maxBuffer: 64 << 20, cwd: ROOT }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${args.join(" ")} failed: ${stderr || err.message}`));
      else res(stdout);
    });
    c.stdin!.end(input ?? "");
  });
}

// ---- /proc sampling: RSS and CPU of a process and all its descendants -------------------------

interface ProcStat {
  ppid: number;
  ticks: number;
}

function procStat(pid: number): ProcStat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

function rssKb(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

function treeOf(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!pid) continue;
    const st = procStat(pid);
    if (!st) continue;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid)!.push(pid);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

interface Usage {
  peakRssMb: number;
  /** Sum of VmHWM of the processes at the end: each one's own lifetime peak. */
  hwmMb: number;
  /** CPU time / wall time: 1.0 is one core fully busy. */
  cpuCores: number;
  processes: number;
}

/** Samples a process tree every 100 ms until stopped. */
function sampler(root: number): { stop(): Usage } {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let peak = 0;
  let procs = 0;
  const t0 = process.hrtime.bigint();
  const sample = () => {
    const pids = treeOf(root);
    procs = Math.max(procs, pids.length);
    let rss = 0;
    for (const p of pids) {
      const st = procStat(p);
      if (!st) continue;
      if (!first.has(p)) first.set(p, st.ticks);
      last.set(p, st.ticks);
      rss += rssKb(p).rss;
    }
    peak = Math.max(peak, rss);
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      let ticks = 0;
      for (const [p, t] of last) ticks += t - (first.get(p) ?? t);
      const hwm = treeOf(root).reduce((a, p) => a + rssKb(p).hwm, 0);
      return { peakRssMb: round(peak / 1024, 1), hwmMb: round(hwm / 1024, 1), cpuCores: round(ticks / CLK_TCK / secs, 2), processes: procs };
    },
  };
}

function tcpActiveOpens(): number {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Tcp:"));
  const names = lines[0].split(/\s+/);
  const vals = lines[1].split(/\s+/);
  return Number(vals[names.indexOf("ActiveOpens")]);
}

function loadAvg(): number[] {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
}

function round(n: number, d = 0): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

// ---- wrk ---------------------------------------------------------------------------------------

interface WrkResult {
  requests: number;
  durationUs: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  non2xx3xx: number;
  timeouts: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
}

interface ModeResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: { non2xx3xx: number; connect: number; read: number; write: number; timeout: number };
  server: Usage;
  loadgen: Usage;
  /** TCP connections opened system-wide during the run, per request: ~1 means one per request. */
  tcpOpensPerRequest: number;
  loadBefore: number[];
}

async function wrk(url: string, env: Record<string, string>, pidToWatch: number): Promise<ModeResult> {
  const loadBefore = loadAvg();
  const opens0 = tcpActiveOpens();
  const server = sampler(pidToWatch);
  const child = spawn("wrk", ["-t", String(THREADS), "-c", String(CONNS), "-d", `${SECONDS}s`, "--timeout", "10s", "--latency", "-s", join(ROOT, "scripts", "bench", "wrk.lua"), url], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const loadgen = sampler(child.pid!);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  const l = loadgen.stop();
  const s = server.stop();
  const opens = tcpActiveOpens() - opens0;
  const line = out.split("\n").find((x) => x.startsWith("BENCHJSON "));
  if (code !== 0 || !line) throw new Error(`wrk failed (${code}): ${out}`);
  const w = JSON.parse(line.slice(10)) as WrkResult;
  return {
    rps: round(w.requests / (w.durationUs / 1e6), 1),
    p50Ms: round(w.p50Us / 1000, 2),
    p99Ms: round(w.p99Us / 1000, 2),
    requests: w.requests,
    errors: { non2xx3xx: w.non2xx3xx, connect: w.connectErrors, read: w.readErrors, write: w.writeErrors, timeout: w.timeouts },
    server: s,
    loadgen: l,
    tcpOpensPerRequest: round(opens / Math.max(w.requests, 1), 3),
    loadBefore,
  };
}

// ---- the estca server under test ---------------------------------------------------------------

interface Estca {
  proc: ChildProcess;
  origin: string;
  logFile: string;
}

async function startEstca(dir: string, tmp: string): Promise<Estca> {
  const logFile = join(tmp, `server-${Date.now()}.log`);
  const fd = openSync(logFile, "w");
  const nodeArgs = opt["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", join(tmp, "prof")] : [];
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (opt.workers) env.ESTCA_WORKERS = opt.workers;
  const proc = spawn(process.execPath, [...nodeArgs, ESTCA, "start", "--data", dir, "--host", "127.0.0.1", "--port", "0", "--http-port", "0"], {
    env,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = readFileSync(logFile, "utf8");
    const m = text.match(/EST base URL:\s+https:\/\/\S+:(\d+)\//);
    if (m) return { proc, origin: `https://localhost:${m[1]}`, logFile };
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`estca start did not come up: ${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopProc(proc: ChildProcess, timeoutMs = 30_000): Promise<number | null> {
  return new Promise((res) => {
    if (proc.exitCode !== null) return res(proc.exitCode);
    const t = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.once("exit", (code) => {
      clearTimeout(t);
      res(code);
    });
    proc.kill("SIGTERM");
  });
}

function request(url: string, ca: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = https.request(url, { method: opts.method ?? "GET", headers: opts.headers, ca, agent: false }, (r) => {
      let b = "";
      r.on("data", (d) => (b += d));
      r.on("end", () => res({ status: r.statusCode ?? 0, body: b }));
    });
    req.on("error", rej);
    req.end(opts.body);
  });
}

/** One P-256 key and CSR. Every request of the bench sends this same CSR (see PERFORMANCE.md). */
async function makeCsr(): Promise<string> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, false, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=bench-device-0001, O=estca bench",
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "bench-device-0001.example" }])],
  });
  return Buffer.from(csr.rawData).toString("base64");
}

function requestLogSince(db: string, afterId: number): { byStatus: Record<string, number>; tls: Record<string, number>; maxId: number } {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const rows = d.prepare(`SELECT status, tls_version AS tls, count(*) AS n FROM est_requests WHERE id > ? GROUP BY status, tls_version`).all(afterId) as { status: number; tls: string | null; n: number }[];
    const maxId = (d.prepare(`SELECT coalesce(max(id), 0) AS m FROM est_requests`).get() as { m: number }).m;
    const byStatus: Record<string, number> = {};
    const tls: Record<string, number> = {};
    for (const r of rows) {
      byStatus[r.status] = (byStatus[r.status] ?? 0) + r.n;
      tls[r.tls ?? "none"] = (tls[r.tls ?? "none"] ?? 0) + r.n;
    }
    return { byStatus, tls, maxId };
  } finally {
    d.close();
  }
}

function storeSize(db: string): { certificates: number; fileMb: number } {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const n = (d.prepare(`SELECT count(*) AS n FROM certificates`).get() as { n: number }).n;
    const bytes = (d.pragma("page_count", { simple: true }) as number) * (d.pragma("page_size", { simple: true }) as number);
    return { certificates: n, fileMb: round(bytes / 1048576, 1) };
  } finally {
    d.close();
  }
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "estca-bench-"));
  const dir = join(tmp, "data");
  const result: Record<string, unknown> = {
    when: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, wrk: wrkVersion() },
    settings: { seconds: SECONDS, connections: CONNS, wrkThreads: THREADS, rounds: ROUNDS, seeded: SEED, copiedFrom: opt["copy-from"] ?? null, workers: opt.workers ? Number(opt.workers) : null },
  };
  let estcaProc: ChildProcess | null = null;
  try {
    log(`bench: data directory ${dir}`);
    if (opt["copy-from"]) {
      log(`bench: copying ${opt["copy-from"]}`);
      execFileSync("cp", ["-a", resolve(opt["copy-from"]), dir]);
    } else {
      await runNode([ESTCA, "init", "--data", dir]);
    }
    const password = "bench-" + Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString("base64url");
    await runNode([ESTCA, "user", "add", "bench", "--password-stdin", "--data", dir], password);
    if (SEED > 0) {
      log(`bench: seeding ${SEED} certificates`);
      const t = Date.now();
      await runNode([...TSX, join(ROOT, "scripts", "seed.ts"), "--data", dir, "--count", String(SEED)]);
      log(`bench: seeded in ${round((Date.now() - t) / 1000, 1)} s`);
    }
    const stored = storeSize(join(dir, "estca.db"));
    result.store = stored;
    log(`bench: the store holds ${stored.certificates} certificates`);
    const csrB64 = await makeCsr();
    const bodyFile = join(tmp, "csr.b64");
    writeFileSync(bodyFile, csrB64);
    const ca = readFileSync(join(dir, "ca.pem"), "utf8");
    const auth = "Basic " + Buffer.from(`bench:${password}`).toString("base64");
    const dbPath = join(dir, "estca.db");

    const estca = await startEstca(dir, tmp);
    estcaProc = estca.proc;
    const serverPid = estca.proc.pid!;
    const enrollUrl = `${estca.origin}/.well-known/est/simpleenroll`;
    const cacertsUrl = `${estca.origin}/.well-known/est/cacerts`;
    const enrollHeaders = `Content-Type: application/pkcs10\nContent-Transfer-Encoding: base64\nAuthorization: ${auth}\n`;

    // Pre-flight: the request wrk will send must really issue a certificate, or we would be
    // measuring the speed of an error.
    // Start-up work (a big store's first CRL, for one) may hold the server a while: wait for it.
    const warm = Date.now();
    let pre: { status: number; body: string } | null = null;
    for (;;) {
      try {
        pre = await request(enrollUrl, ca, { method: "POST", headers: { "Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64", Authorization: auth }, body: csrB64 });
        if (pre.status === 200) break;
      } catch (e) {
        if (Date.now() - warm > 120_000) throw e;
      }
      if (pre && pre.status !== 200 && pre.status !== 503) break;
      if (Date.now() - warm > 120_000) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (!pre || pre.status !== 200) throw new Error(`pre-flight enrollment answered ${pre?.status}: ${pre?.body}`);
    result.warmUpSeconds = round((Date.now() - warm) / 1000, 1);
    if (result.warmUpSeconds as number > 2) log(`bench: the server answered its first enrollment after ${result.warmUpSeconds} s`);
    const issued = certsOf(Buffer.from(pre.body, "base64"));
    if (issued.length !== 1) throw new Error("pre-flight enrollment returned no certificate");
    // ... and must be idle before measuring: with a big store its first CRL takes a while.
    const idleFrom = Date.now();
    for (;;) {
      const u = sampler(serverPid);
      await new Promise((r) => setTimeout(r, 1000));
      if (u.stop().cpuCores < 0.15 || Date.now() - idleFrom > 300_000) break;
    }
    result.idleWaitSeconds = round((Date.now() - idleFrom) / 1000, 1);
    if ((result.idleWaitSeconds as number) > 2) log(`bench: waited ${result.idleWaitSeconds} s for the server to go idle`);
    const cc = await request(cacertsUrl, ca);
    if (cc.status !== 200) throw new Error(`pre-flight /cacerts answered ${cc.status}`);

    const modeEnv: Record<string, Record<string, string>> = {
      "enroll-keepalive": { BENCH_METHOD: "POST", BENCH_BODY_FILE: bodyFile, BENCH_HEADERS: enrollHeaders },
      "enroll-newconn": { BENCH_METHOD: "POST", BENCH_BODY_FILE: bodyFile, BENCH_HEADERS: enrollHeaders + "Connection: close\n" },
      cacerts: { BENCH_METHOD: "GET", BENCH_BODY_FILE: "", BENCH_HEADERS: "" },
    };
    const rounds: Record<string, unknown>[] = [];
    let lastId = requestLogSince(dbPath, 0).maxId;
    for (let r = 1; r <= ROUNDS; r++) {
      const modes: Record<string, unknown> = {};
      for (const m of MODES) {
        if (!modeEnv[m]) throw new Error(`unknown mode ${m}`);
        log(`bench: round ${r}, ${m}, ${SECONDS} s, load ${loadAvg().join(" ")}`);
        const res = await wrk(m === "cacerts" ? cacertsUrl : enrollUrl, modeEnv[m], serverPid);
        const seen = requestLogSince(dbPath, lastId);
        lastId = seen.maxId;
        modes[m] = { ...res, serverLog: { byStatus: seen.byStatus, tls: seen.tls } };
        log(`  ${res.rps} req/s, p50 ${res.p50Ms} ms, p99 ${res.p99Ms} ms, non-2xx ${res.errors.non2xx3xx}, server ${res.server.cpuCores} cores ${res.server.peakRssMb} MB`);
      }
      modes.rssAfterRoundMb = round(treeOf(serverPid).reduce((a, p) => a + rssKb(p).rss, 0) / 1024, 1);
      rounds.push(modes);
    }

    // Ceiling 1: raw token signing, while the server is idle.
    log(`bench: ceiling, raw ECDSA P-256 signing through pkcs11js, ${SECONDS} s, load ${loadAvg().join(" ")}`);
    const sign = JSON.parse(await runNode([...TSX, join(ROOT, "scripts", "bench", "sign-ceiling.ts"), dir, String(SECONDS)])) as { perSecond: number; cpuCores: number };
    log(`  ${round(sign.perSecond)} signatures/s`);

    const stopCode = await stopProc(estca.proc);
    estcaProc = null;
    if (stopCode !== 0) throw new Error(`estca did not stop cleanly on SIGTERM (exit ${stopCode})`);

    // Ceiling 2: the bare Node https server, new connection per request and keep-alive.
    const bare = spawn(process.execPath, [...TSX, join(ROOT, "scripts", "bench", "tls-ceiling.ts"), dir], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let bareOut = "";
    bare.stdout!.on("data", (d) => (bareOut += d));
    while (!bareOut.includes("\n")) {
      if (bare.exitCode !== null) throw new Error("tls-ceiling server died");
      await new Promise((r) => setTimeout(r, 50));
    }
    const barePort = (JSON.parse(bareOut.split("\n")[0]) as { port: number }).port;
    let lines = 1;
    const counts = async (): Promise<{ handshakes: number; requests: number }> => {
      bare.kill("SIGUSR2");
      lines++;
      while (bareOut.split("\n").length <= lines) await new Promise((r) => setTimeout(r, 20));
      return JSON.parse(bareOut.split("\n")[lines - 1]) as { handshakes: number; requests: number };
    };
    await counts();
    log(`bench: ceiling, bare Node https server, new connection per request, ${SECONDS} s, load ${loadAvg().join(" ")}`);
    const bareNew = await wrk(`https://localhost:${barePort}/`, { BENCH_METHOD: "GET", BENCH_HEADERS: "Connection: close\n" }, bare.pid!);
    const bareCounts = await counts();
    log(`  ${bareNew.rps} req/s, ${bareCounts.handshakes} handshakes for ${bareCounts.requests} requests`);
    log(`bench: ceiling, bare Node https server, keep-alive, ${SECONDS} s, load ${loadAvg().join(" ")}`);
    const bareKeep = await wrk(`https://localhost:${barePort}/`, { BENCH_METHOD: "GET", BENCH_HEADERS: "" }, bare.pid!);
    log(`  ${bareKeep.rps} req/s`);
    await new Promise<void>((r) => {
      bare.once("exit", () => r());
      bare.kill("SIGTERM");
    });

    const last = rounds[rounds.length - 1] as Record<string, ModeResult>;
    const ratios: Record<string, number | null> = {};
    const get = (m: string) => last[m] as ModeResult | undefined;
    if (get("enroll-keepalive")) {
      ratios.enrollKeepAliveVsSigning = round(get("enroll-keepalive")!.rps / sign.perSecond, 3);
      ratios.enrollKeepAliveP99VsTarget = round(get("enroll-keepalive")!.p99Ms / P99_TARGET_MS, 3);
    }
    if (get("enroll-newconn")) ratios.enrollNewConnVsBareHandshake = round(get("enroll-newconn")!.rps / bareNew.rps, 3);
    if (get("cacerts")) ratios.cacertsVsBareKeepAlive = round(get("cacerts")!.rps / bareKeep.rps, 3);
    const peakRss = Math.max(...rounds.flatMap((r) => MODES.map((m) => (r[m] as ModeResult).server.peakRssMb)));
    ratios.serverPeakRssVsTarget = round(peakRss / RSS_TARGET_MB, 3);

    Object.assign(result, {
      rounds,
      ceilings: {
        signing: { perSecond: round(sign.perSecond, 1), cpuCores: round(sign.cpuCores, 2) },
        bareHttpsNewConn: { ...bareNew, handshakes: bareCounts.handshakes, handshakesPerRequest: round(bareCounts.handshakes / Math.max(bareCounts.requests, 1), 3) },
        bareHttpsKeepAlive: bareKeep,
      },
      targets: { enrollKeepAliveVsSigning: 0.3, enrollNewConnVsBareHandshake: 0.6, p99Ms: P99_TARGET_MS, rssMb: RSS_TARGET_MB },
      serverPeakRssMb: peakRss,
      rssAfterRoundMb: rounds.map((r) => r.rssAfterRoundMb),
      ratios,
      serverStoppedCleanly: true,
    });

    const pad = (s: string, n: number) => s.padEnd(n);
    process.stdout.write("\n");
    process.stdout.write(`${pad("figure", 44)}${pad("value", 14)}${pad("ceiling/target", 18)}ratio\n`);
    const row = (name: string, v: number, unit: string, c: number, cunit: string) =>
      process.stdout.write(`${pad(name, 44)}${pad(`${round(v, 1)} ${unit}`, 14)}${pad(`${round(c, 1)} ${cunit}`, 18)}${round(v / c, 3)}\n`);
    for (const m of MODES) {
      const x = get(m)!;
      const ceil = m === "enroll-keepalive" ? [sign.perSecond, "sig/s"] : m === "enroll-newconn" ? [bareNew.rps, "req/s bare"] : [bareKeep.rps, "req/s bare"];
      row(`${m} requests/s`, x.rps, "/s", ceil[0] as number, ceil[1] as string);
      row(`${m} p50 latency`, x.p50Ms, "ms", P99_TARGET_MS, "ms");
      row(`${m} p99 latency`, x.p99Ms, "ms", P99_TARGET_MS, "ms");
      row(`${m} server peak RSS`, x.server.peakRssMb, "MB", RSS_TARGET_MB, "MB");
      row(`${m} server CPU`, x.server.cpuCores, "cores", cpus().length, "cores");
      process.stdout.write(`${pad(`${m} errors (non-2xx/3xx, socket)`, 44)}${x.errors.non2xx3xx}, ${x.errors.connect + x.errors.read + x.errors.write + x.errors.timeout}\n`);
    }
    process.stdout.write(`${pad("wrk opened a connection per request (bare)", 44)}${round(bareCounts.handshakes / Math.max(bareCounts.requests, 1), 3)} handshakes/request\n\n`);
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    if (estcaProc) await stopProc(estcaProc);
    if (!opt.keep && !opt["cpu-prof"]) rmSync(tmp, { recursive: true, force: true });
    else log(`bench: kept ${tmp}`);
    if (existsSync(join(tmp, "prof"))) log(`bench: CPU profiles in ${join(tmp, "prof")}`);
  }
}

main().catch((e) => {
  log(`bench failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
