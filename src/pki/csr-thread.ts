// The body of a CSR thread (src/pki/csr-pool.ts): parse and check proof of possession, nothing else.
import { parentPort } from "node:worker_threads";
import { parseAndVerifyCsr } from "./csr.ts";

const port = parentPort!;
port.on("message", (m: { id: number; der: Uint8Array }) => {
  try {
    const csr = parseAndVerifyCsr(Buffer.from(m.der.buffer, m.der.byteOffset, m.der.byteLength));
    port.postMessage({ id: m.id, csr });
  } catch (e) {
    const err = e as { name?: string; kind?: string; message?: string };
    port.postMessage({ id: m.id, error: { estca: err.name === "EstcaError", kind: err.kind, message: err.message ?? String(e) } });
  }
});
port.postMessage({ ready: true });
