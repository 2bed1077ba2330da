import type { Command } from "commander";
import { KEY_TYPES, type KeyType } from "../hsm/key-manager.ts";
import { type InitOptions, type InitResult, initInstance } from "../instance/init.ts";
import { isInitialized, openInstance } from "../instance/open.ts";
import { validateIp } from "../instance/tls.ts";
import { startServer } from "../server/start.ts";
import { isWorker, reportListening, superviseWorkers } from "../server/cluster.ts";
import { serveClusterMetrics } from "../server/metrics.ts";
import { dataPaths } from "../config/paths.ts";
import { recoverRollover } from "../instance/lifecycle.ts";
import { watchLifecycle } from "../server/lifecycle-watch.ts";
import { EstcaError } from "../errors.ts";
import { action, collect, dataOption, envOption, parsePort } from "./common.ts";

function parseWorkers(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new EstcaError("config", `--workers ${v}: give a whole number from 1 to 64`);
  return n;
}

function printCredentials(r: InitResult): void {
  const out = process.stdout;
  out.write(`initialized ${r.dir}\n`);
  if (r.estUser) out.write(`  EST user:  ${r.estUser.name}  password: ${r.estUser.password}\n`);
  if (r.admin) out.write(`  UI admin:  ${r.admin.name}  password: ${r.admin.password}\n`);
  out.write("  These passwords are shown only now; they are stored hashed. Keep them.\n");
}

function initOptions(o: Record<string, unknown>): InitOptions {
  const ips = (o.ip as string[] | undefined) ?? [];
  for (const ip of ips) {
    try {
      validateIp(ip);
    } catch (e) {
      throw new EstcaError("config", `--ip: ${(e as Error).message}`);
    }
  }
  return {
    keyType: o.keyType as KeyType | undefined,
    caName: o.caName as string | undefined,
    dnsNames: (o.dns as string[] | undefined) ?? [],
    ipAddresses: ips,
    host: o.host as string | undefined,
    port: o.port as number | undefined,
    httpPort: o.httpPort as number | undefined,
    pkcs11Module: o.pkcs11Module as string | undefined,
    tokenLabel: o.tokenLabel as string | undefined,
  };
}

function addInitFlags(c: Command): Command {
  return c
    .addOption(envOption("--key-type <type>", `CA key type: ${KEY_TYPES.join("|")}`, "KEY_TYPE").choices(KEY_TYPES))
    .addOption(envOption("--ca-name <name>", "CA subject common name", "CA_NAME"))
    .addOption(envOption("--dns <name>", "extra DNS name for the EST listener certificate (repeatable)", "DNS").argParser(collect))
    .addOption(envOption("--ip <addr>", "extra IP address for the EST listener certificate (repeatable)", "IP").argParser(collect))
    .addOption(envOption("--pkcs11-module <path>", "use an existing token of this PKCS#11 module instead of a project-local SoftHSM token (PIN from ESTCA_HSM_PIN)", "PKCS11_MODULE"))
    .addOption(envOption("--token-label <label>", "label of the token holding the CA keys (default estca)", "TOKEN_LABEL"));
}

export function registerServerCommands(program: Command): void {
  addInitFlags(program.command("init").description("create a data directory: SoftHSM token, CA key and root, TLS certificate, store, config, first users"))
    .addOption(dataOption())
    .action(
      action(async (o: Record<string, unknown>) => {
        const r = await initInstance(o.data as string, initOptions(o));
        if (!r.created) {
          process.stdout.write(`${r.dir} is already initialized; nothing changed\n`);
          return;
        }
        printCredentials(r);
      }),
    );

  addInitFlags(program.command("start").description("serve EST, the web UI, CRL, OCSP and metrics (initializes an empty data directory first)"))
    .addOption(dataOption())
    .addOption(envOption("--host <host>", "address to listen on", "HOST"))
    .addOption(envOption("--port <port>", "EST/UI TLS port (default 8443)", "PORT").argParser(parsePort))
    .addOption(envOption("--http-port <port>", "plain HTTP port for CRL, OCSP, metrics, health (default 8080)", "HTTP_PORT").argParser(parsePort))
    .addOption(envOption("--workers <n>", "serving processes sharing the ports, to use more cores (default 1; see docs/PERFORMANCE.md)", "WORKERS").argParser(parseWorkers))
    .action(
      action(async (o: Record<string, unknown>) => {
        const dir = o.data as string;
        if (!isInitialized(dir)) printCredentials(await initInstance(dir, initOptions(o)));
        const workers = (o.workers as number | undefined) ?? 1;
        if (workers > 1 && !isWorker()) {
          // Finish an interrupted rollover once, here, before the workers race to do it.
          const inst = openInstance(dir);
          try {
            await recoverRollover(inst);
          } finally {
            inst.close();
          }
          serveClusterMetrics();
          return superviseWorkers(workers, (m) =>
            process.stdout.write(`estca is serving (${workers} workers)\n  EST base URL:   ${m.estUrl}\n  trust anchors:  ${dataPaths(dir).caPem}\n  web UI:         ${m.uiUrl}\n  CRL/OCSP/metrics: ${m.httpUrl}/\n`),
          );
        }
        const inst = openInstance(dir, (c) => ({
          ...c,
          server: {
            ...c.server,
            host: (o.host as string | undefined) ?? c.server.host,
            port: (o.port as number | undefined) ?? c.server.port,
            httpPort: (o.httpPort as number | undefined) ?? c.server.httpPort,
          },
        }));
        let running;
        try {
          // Before the listener reads its files: an interrupted rollover may have left them half-written.
          const recovered = await recoverRollover(inst);
          if (recovered === "finished" || recovered === "undone") process.stdout.write(`an interrupted CA rollover was ${recovered}\n`);
          running = await startServer(inst);
          watchLifecycle(inst, running);
        } catch (e) {
          inst.close();
          throw e;
        }
        if (isWorker()) reportListening({ estUrl: running.estUrl, httpUrl: running.httpUrl, uiUrl: running.uiUrl });
        else process.stdout.write(
          `estca is serving\n  EST base URL:   ${running.estUrl}\n  trust anchors:  ${inst.paths.caPem}\n  web UI:         ${running.uiUrl}\n  CRL/OCSP/metrics: ${running.httpUrl}/\n`,
        );
        let stopping = false;
        const stop = async (sig: string) => {
          if (stopping) return;
          stopping = true;
          running.services.log.info({ signal: sig }, "stopping: finishing requests in flight");
          await running.close();
          inst.close();
          process.stdout.write("estca stopped\n");
          process.exit(0);
        };
        process.on("SIGINT", () => void stop("SIGINT"));
        process.on("SIGTERM", () => void stop("SIGTERM"));
      }),
    );
}
