// Ceiling 2: a bare Node https server that answers every request with a fixed 1 KB body. It uses
// the bench instance's listener certificate and the same TLS settings as estca (TLS 1.2+, the same
// TLS 1.2 suites, a CertificateRequest naming the CA), so the handshake it does is the one estca
// must do; it only leaves out the application. It counts handshakes and requests so the bench can
// prove that wrk opened a new connection for every request.
// Usage: node --import tsx scripts/bench/tls-ceiling.ts DATA_DIR   (prints {"port":N}; on SIGUSR2
// prints {"handshakes":N,"requests":M} counted since the last SIGUSR2 and starts counting afresh)
import { readFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { TLS12_CIPHERS } from "../../src/server/start.ts";

const dir = process.argv[2];
const body = Buffer.alloc(1024, "x");
let handshakes = 0;
let requests = 0;
const server = https.createServer(
  {
    key: readFileSync(join(dir, "tls", "server.key")),
    cert: readFileSync(join(dir, "tls", "server.pem")),
    ca: readFileSync(join(dir, "ca.pem")),
    minVersion: "TLSv1.2",
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
    requestCert: true,
    rejectUnauthorized: false,
  },
  (req, res) => {
    requests++;
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
      res.end(body);
    });
  },
);
server.on("secureConnection", () => handshakes++);
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(JSON.stringify({ port: typeof addr === "object" && addr ? addr.port : 0 }) + "\n");
});
process.on("SIGUSR2", () => {
  process.stdout.write(JSON.stringify({ handshakes, requests }) + "\n");
  handshakes = 0;
  requests = 0;
});
process.on("SIGTERM", () => process.exit(0));
