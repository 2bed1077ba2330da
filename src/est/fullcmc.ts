import type { Context } from "koa";
import { EstcaError } from "../errors.ts";
import { STATUS_OF } from "../http/errors.ts";
import { type CmcFailName, CmcFailure, buildPkiResponse, parseFullCmcRequest } from "../pki/cmc.ts";
import { signedData } from "../pki/cms-signed.ts";
import { OID } from "../pki/oids.ts";
import type { Services } from "../server/services.ts";
import { clientContextOf } from "./client-context.ts";
import { CT_CMC_RESPONSE } from "./media.ts";
import type { EstHandler } from "./router.ts";
import { readEstBody, sendBase64, sendPending } from "./wire.ts";

const HTTP_OF_FAIL: Partial<Record<CmcFailName, number>> = { badIdentity: 403, tryLater: 503, internalCAError: 500 };

/** Which CMCFailInfo a core refusal is (RFC 5272 6.1.4). */
function failInfoOf(e: EstcaError): CmcFailName {
  if (e.kind === "forbidden" || e.kind === "unauthorized") return "badIdentity";
  if (e.kind === "unavailable" || e.kind === "throttled") return "tryLater";
  if (e.kind !== "bad_request") return "internalCAError";
  if (/proof of possession failed/.test(e.message)) return "popFailed";
  if (/signature algorithm|SHA-1|RSASSA-PSS|key type|RSA key has|EC curve/.test(e.message)) return "badAlg";
  return "badRequest";
}

async function sendCmc(ctx: Context, s: Services, status: number, response: Buffer, certificates: Uint8Array[] = []): Promise<void> {
  const der = await signedData({ eContentType: OID.ctPkiResponse, eContent: response, signer: s.ca.cmsSigner(), certificates });
  sendBase64(ctx, CT_CMC_RESPONSE, der, status);
}

/**
 * RFC 7030 4.3 / RFC 5272: a Full PKI Request with one PKCS#10. Success and refusal both answer
 * with a PKIResponse signed by the CA; a refusal carries CMCStatusInfoV2 failed with its
 * CMCFailInfo and a 4xx/5xx status (RFC 7030 4.3.2).
 */
export const fullcmcHandler: EstHandler = async (ctx, s, label, st) => {
  const client = clientContextOf(ctx);
  let auth: Awaited<ReturnType<typeof s.ra.authenticate>>;
  try {
    auth = await s.ra.authenticate(label, client);
  } catch (e) {
    // Missing or wrong credentials stay a plain 401 with its challenge; a known client without
    // permission for this profile is CMCFailInfo badIdentity.
    if (!(e instanceof EstcaError && e.kind === "forbidden")) throw e;
    await readEstBody(ctx, s.config.server.bodyLimit, "fullcmc", "CMC request");
    return failCmc(ctx, s, e, []);
  }
  const { name, profile, identity } = auth;
  st.identity = identity;
  const body = await readEstBody(ctx, s.config.server.bodyLimit, "fullcmc", "CMC request");
  let bodyPartIds: number[] = [];
  try {
    const req = parseFullCmcRequest(body);
    bodyPartIds = [req.bodyPartId];
    const csr = await s.ra.checkCsr(name, profile, req.csrDer, client);
    const result = await s.ra.decide("fullcmc", name, profile, identity, csr);
    if (result.kind === "pending") {
      st.enrollmentId = result.enrollmentId;
      return sendPending(ctx, result.enrollmentId, result.retryAfter);
    }
    st.serial = result.issued.serial;
    await sendCmc(ctx, s, 200, buildPkiResponse({ status: "success", bodyPartIds }), [result.issued.der]);
  } catch (e) {
    await failCmc(ctx, s, e, bodyPartIds);
  }
};

/** Answers a refusal as a PKIResponse with CMCStatusInfoV2 failed, and records the reason. */
async function failCmc(ctx: Context, s: Services, e: unknown, bodyPartIds: number[]): Promise<void> {
  let fail: CmcFailName;
  let reason: string;
  if (e instanceof CmcFailure) {
    fail = e.failInfo;
    reason = e.message;
    if (e.bodyPartIds.length) bodyPartIds = e.bodyPartIds;
  } else if (e instanceof EstcaError) {
    fail = failInfoOf(e);
    reason = e.message;
  } else {
    s.log.error({ err: e }, "fullcmc failed");
    fail = "internalCAError";
    reason = "internal error; see the server log";
  }
  const status = HTTP_OF_FAIL[fail] ?? (e instanceof EstcaError ? STATUS_OF[e.kind] : 400);
  ctx.state.failure = { status, reason: `CMC failed (${fail}): ${reason}`, headers: {} };
  await sendCmc(ctx, s, status, buildPkiResponse({ status: "failed", bodyPartIds, statusString: reason, failInfo: fail }));
}
