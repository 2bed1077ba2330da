// A channel-binding EST client, run as its own process by test/est-binding.test.ts.
// It opens one TLS connection, computes the binding from the CLIENT's side of it (tls-unique on
// TLS 1.2, tls-exporter on TLS 1.3), puts it in a CSR's challengePassword, and POSTs that CSR
// over the same connection with Node's HTTP client. Prints one JSON line.
import "reflect-metadata";
import { readFileSync } from "node:fs";
import http from "node:http";
import { webcrypto } from "node:crypto";
import tls from "node:tls";
import * as x509 from "@peculiar/x509";

interface Args {
  port: number;
  path: string;
  ca: string;
  tls: "TLSv1.2" | "TLSv1.3";
  userpass: string;
  /** correct: the real binding; wrong: random bytes of the right size; short: a 12-byte value; none: no challengePassword */
  mode: "correct" | "wrong" | "short" | "none";
  /** TLS 1.2 only: resume a session first, so the handshake is abbreviated. */
  resume?: boolean;
}

const a = JSON.parse(process.argv[2]) as Args;
const connectOpts = { host: "127.0.0.1", servername: "localhost", port: a.port, ca: readFileSync(a.ca), minVersion: a.tls, maxVersion: a.tls } as const;

/** With `resume`, a first connection only fetches a session, and the second resumes it. */
function connect(): Promise<tls.TLSSocket> {
  if (!a.resume) return Promise.resolve(tls.connect(connectOpts));
  return new Promise((resolve, reject) => {
    const first = tls.connect(connectOpts);
    first.once("error", reject);
    first.once("session", (session: Buffer) => {
      first.end();
      resolve(tls.connect({ ...connectOpts, session }));
    });
  });
}

const socket = await connect();

socket.once("secureConnect", async () => {
  try {
    if (a.resume && !socket.isSessionReused()) throw new Error("the server did not resume the session");
    // TLS 1.2: tls-unique is the first Finished of the handshake (RFC 5929 3.1): the client's own
    // in a full handshake, the server's in an abbreviated (resumed) one. TLS 1.3: the RFC 9266 exporter.
    const real = a.tls === "TLSv1.2" ? (a.resume ? socket.getPeerFinished()! : socket.getFinished()!) : socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
    const value =
      a.mode === "correct" ? real.toString("base64") : a.mode === "wrong" ? webcrypto.getRandomValues(Buffer.alloc(real.length)).toString("base64") : a.mode === "short" ? Buffer.alloc(12, 7).toString("base64") : null;
    const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: `CN=cb-${a.tls}-${a.mode}`, keys, signingAlgorithm: alg, attributes: value === null ? [] : [new x509.ChallengePasswordAttribute(value)] },
      webcrypto as unknown as Crypto,
    );
    const body = Buffer.from(Buffer.from(csr.rawData).toString("base64"));
    const req = http.request(
      {
        // The already-connected TLS socket: the request travels over the connection we measured.
        createConnection: () => socket,
        method: "POST",
        path: a.path,
        headers: { Host: `localhost:${a.port}`, Authorization: `Basic ${Buffer.from(a.userpass).toString("base64")}`, "Content-Type": "application/pkcs10", "Content-Length": body.length, "User-Agent": "cb-client" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          process.stdout.write(JSON.stringify({ status: res.statusCode, body: Buffer.concat(chunks).toString("utf8"), binding: real.toString("base64"), sent: value, protocol: socket.getProtocol(), resumed: socket.isSessionReused() }) + "\n");
          socket.destroy();
        });
      },
    );
    req.on("error", (e) => {
      process.stderr.write(String(e) + "\n");
      process.exit(2);
    });
    req.end(body);
  } catch (e) {
    process.stderr.write(String((e as Error).stack) + "\n");
    process.exit(2);
  }
});
socket.once("error", (e) => {
  process.stderr.write(String(e) + "\n");
  process.exit(2);
});
