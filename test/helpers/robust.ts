// Helpers shared by the robustness tests (test/robust-*.test.ts). Real sockets, real processes.
import "reflect-metadata";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import https from "node:https";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

/** One request with Node's https client (a separate implementation from the server's parser). */
export function request(
  origin: string,
  opts: { method?: string; path: string; headers?: Record<string, string | number>; body?: Buffer | string; agent?: https.Agent | false; ca: string; cert?: string; key?: string; timeoutMs?: number },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(opts.path, origin);
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? "POST",
        headers: opts.headers,
        agent: opts.agent,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        servername: "localhost",
        timeout: opts.timeoutMs ?? 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Resident memory of a process in kB, from /proc. */
export function rssKb(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Open file descriptors of a process (sockets included). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The soft limit on open files of a process. */
export function fdLimit(pid: number): number {
  const m = readFileSync(`/proc/${pid}/limits`, "utf8").match(/Max open files\s+(\d+|unlimited)/);
  return m && m[1] !== "unlimited" ? Number(m[1]) : Infinity;
}

/** The certificates inside a base64 certs-only CMS, DER each. */
export function certsOfCertsOnly(b64: string | Buffer): Buffer[] {
  const der = Buffer.from(b64.toString(), "base64");
  const ci = new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(der)).result });
  const sd = new pkijs.SignedData({ schema: ci.content });
  return (sd.certificates ?? []).map((c) => Buffer.from((c as pkijs.Certificate).toSchema().toBER()));
}

/** A seeded PRNG (mulberry32), so a failing malformed input can be reproduced. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a program with stdin closed (no EPIPE when it exits before reading), collecting its output. */
export function runNoStdin(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.on("error", (e) => resolve({ code: 1, stdout, stderr: stderr + e.message }));
  });
}
