import { buildCsrAttrs } from "../pki/csrattrs.ts";
import type { EstHandler } from "./router.ts";
import { CT_CSRATTRS } from "./media.ts";
import { sendBase64 } from "./wire.ts";

/** RFC 7030 4.5: what the profile wants in a CSR. Like /cacerts it needs no credentials. */
export const csrattrsHandler: EstHandler = async (ctx, s, label) => {
  const { name, profile } = s.ra.profile(label);
  sendBase64(ctx, CT_CSRATTRS, buildCsrAttrs(profile.csrattrs, { requireChallengePassword: profile.channelBinding === "required", where: `profiles.${name}.csrattrs` }));
};
