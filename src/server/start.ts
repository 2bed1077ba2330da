import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { configError } from "../errors.ts";
import { type Instance, httpBaseUrl } from "../instance/open.ts";
import { createLogger, type Logger } from "../log.ts";
import { RegistrationAuthority } from "../ra/registration-authority.ts";
import { toPem } from "../pki/encoding.ts";
import { CsrThreadPool, inlineCsrChecker } from "../pki/csr-pool.ts";
import { buildHttpApp, buildTlsApp } from "./apps.ts";
import { answerClientErrors, checkRequestHead, listenerOptions } from "./hardening.ts";
import { Metrics } from "./metrics.ts";
import { httpMounts, tlsMounts } from "./mounts.ts";
import type { Services } from "./services.ts";

/** TLS 1.2 suites: forward secret (ECDHE) and AEAD only. TLS 1.3 suites are all AEAD already. */
export const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

export interface Running {
  services: Services;
  estUrl: string;
  httpUrl: string;
  uiUrl: string;
  tlsServer: https.Server;
  httpServer: http.Server;
  /** Reloads the listener certificate and client CAs (after a rollover). */
  reloadTls(): void;
  close(): Promise<void>;
}

function listen(server: http.Server | https.Server, port: number, host: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(configError(`${what} port ${port} on ${host} is already in use: stop the other process or choose another port (--${what === "EST" ? "port" : "http-port"})`));
      else if (e.code === "EACCES") reject(configError(`no permission to listen on ${host}:${port} for ${what}: choose a port above 1023 or run with the needed privilege`));
      else if (e.code === "EADDRNOTAVAIL") reject(configError(`cannot listen on ${host}: the address is not on this machine (--host)`));
      else reject(e);
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : port);
    });
  });
}

function displayHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "") return "localhost";
  return host.includes(":") ? `[${host}]` : host;
}

export async function startServer(inst: Instance, opts: { log?: Logger } = {}): Promise<Running> {
  const log = opts.log ?? createLogger();
  const { config, paths } = inst;
  const threads = config.server.csrThreads ?? (cluster.isWorker || availableParallelism() < 2 ? 0 : 1);
  const csrs = threads > 0 ? new CsrThreadPool(threads, (e) => log.error({ err: e }, "a CSR thread failed; it is replaced, and its requests were checked on the main thread")) : inlineCsrChecker();
  const ra = new RegistrationAuthority(inst.ca, inst.store, config, paths.dir, csrs);
  const metrics = new Metrics(inst.store);
  metrics.instrument(inst.km);
  const services: Services = { config, paths, km: inst.km, store: inst.store, ca: inst.ca, ra, log, estOrigin: "", metrics, onEstRequest: (e) => metrics.observeEst(e) };

  const tlsOptions = () => ({
    key: readFileSync(paths.tlsKey),
    cert: readFileSync(paths.tlsCert),
    // The CAs named in the CertificateRequest: ours and every profile's external anchors.
    ca: [...inst.ca.allIssuers().map((i) => i.der), ...ra.auth.externalAnchorsDer()].map((d) => toPem(d, "CERTIFICATE")),
  });
  const tlsServer = https.createServer(
    {
      ...tlsOptions(),
      minVersion: "TLSv1.2",
      ciphers: TLS12_CIPHERS,
      honorCipherOrder: true,
      requestCert: true,
      rejectUnauthorized: false,
      ...listenerOptions(config.server),
    },
    checkRequestHead(buildTlsApp(services, tlsMounts).callback()),
  );
  const { connectionsCheckingInterval, requireHostHeader } = listenerOptions(config.server);
  const httpServer = http.createServer({ connectionsCheckingInterval, requireHostHeader }, checkRequestHead(buildHttpApp(services, httpMounts).callback()));
  for (const srv of [tlsServer, httpServer]) {
    srv.headersTimeout = config.server.headersTimeoutMs;
    srv.requestTimeout = config.server.requestTimeoutMs;
    srv.keepAliveTimeout = config.server.keepAliveTimeoutMs;
    srv.maxHeadersCount = 0;
    answerClientErrors(srv, log);
  }
  tlsServer.on("tlsClientError", (err: Error, sock: Socket) => {
    log.debug({ err: err.message, client: sock.remoteAddress }, "TLS handshake failed");
    // With a listener here Node leaves the socket open: a handshake timeout would close nothing.
    sock.destroy();
  });

  const port = await listen(tlsServer, config.server.port, config.server.host, "EST");
  let httpPort: number;
  try {
    httpPort = await listen(httpServer, config.server.httpPort, config.server.host, "HTTP");
  } catch (e) {
    tlsServer.close();
    throw e;
  }
  const host = displayHost(config.server.host);
  if (!config.server.publicHttpUrl && config.server.httpPort === 0) {
    // An ephemeral port is only known now; the CRL and OCSP URLs in certificates must name it.
    inst.ca.setUrls({ httpBaseUrl: httpBaseUrl({ ...config, server: { ...config.server, httpPort } }) });
  }
  const estOrigin = `https://${host}:${port}`;
  services.estOrigin = estOrigin;

  // New certificates enter the search index once a second, in one batch (CertificateRepo.indexSearch).
  const indexing = setInterval(() => {
    try {
      inst.store.certs.indexSearch();
    } catch (e) {
      log.warn({ err: e }, "search indexing failed; it is retried, and search reads unindexed certificates directly");
    }
  }, 1000);
  indexing.unref();

  let closing: Promise<void> | null = null;
  return {
    services,
    estUrl: `${estOrigin}/.well-known/est/`,
    httpUrl: `http://${host}:${httpPort}`,
    uiUrl: `${estOrigin}/ui/`,
    tlsServer,
    httpServer,
    reloadTls() {
      tlsServer.setSecureContext({ ...tlsOptions(), minVersion: "TLSv1.2", ciphers: TLS12_CIPHERS, honorCipherOrder: true });
    },
    close() {
      clearInterval(indexing);
      // Requests in flight finish; idle keep-alive sockets are closed so the servers can stop.
      closing ??= Promise.all(
        [tlsServer, httpServer].map(
          (srv) =>
            new Promise<void>((resolve) => {
              srv.close(() => resolve());
              srv.closeIdleConnections();
              // A keep-alive client that never goes idle must not hold the stop forever.
              setTimeout(() => srv.closeAllConnections(), 10_000).unref();
            }),
        ),
      ).then(async () => {
        await csrs.close();
        log.flush();
      });
      return closing;
    },
  };
}
