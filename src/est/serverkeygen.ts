import { certsOnly } from "../pki/cms.ts";
import { signedData } from "../pki/cms-signed.ts";
import { OID } from "../pki/oids.ts";
import { envelopeKey } from "../pki/server-key.ts";
import { serverKeygen } from "../ra/server-keygen.ts";
import { clientContextOf } from "./client-context.ts";
import { CT_CERTS_ONLY, CT_PKCS8, CT_SERVER_KEY } from "./media.ts";
import type { EstHandler } from "./router.ts";
import { readEstBody, sendMultipart, sendPending } from "./wire.ts";

/**
 * RFC 7030 4.4: the server generates the key. The answer is multipart/mixed: the key (PKCS#8, or
 * CMS EnvelopedData inside SignedData when the CSR asked for encryption) and the certificate.
 */
export const serverkeygenHandler: EstHandler = async (ctx, s, label, st) => {
  const client = clientContextOf(ctx);
  const { name, profile, identity } = await s.ra.authenticate(label, client);
  st.identity = identity;
  const csrDer = await readEstBody(ctx, s.config.server.bodyLimit, "serverkeygen", "PKCS#10 request");
  const csr = await s.ra.checkCsr(name, profile, csrDer, client);
  const r = await serverKeygen(s.ra, name, profile, identity, csr);
  if (r.result.kind === "pending") {
    st.enrollmentId = r.result.enrollmentId;
    return sendPending(ctx, r.result.enrollmentId, r.result.retryAfter);
  }
  st.serial = r.result.issued.serial;
  const key = r.key!;
  const keyPart = r.encryptFor
    ? { contentType: CT_SERVER_KEY, der: await signedData({ eContentType: OID.envelopedData, eContent: await envelopeKey(key.pkcs8, r.encryptFor), signer: s.ca.cmsSigner() }) }
    : { contentType: CT_PKCS8, der: key.pkcs8 };
  sendMultipart(ctx, [keyPart, { contentType: CT_CERTS_ONLY, der: certsOnly([r.result.issued.der]) }]);
};
