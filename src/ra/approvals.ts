import { badRequest, conflict, notFound } from "../errors.ts";
import type { Enrollment, Store } from "../store/index.ts";

/**
 * Decisions on held requests. The certificate itself is issued when the client polls again
 * (RFC 7030 4.2.3), so that it is delivered over the client's own authenticated connection.
 */
export function decideEnrollment(store: Store, id: number, decision: "approved" | "rejected", by: string, reason: string): Enrollment {
  if (!Number.isInteger(id) || id <= 0) throw badRequest(`request id must be a positive whole number, not ${id}`);
  const e = store.enrollments.get(id);
  if (!e) throw notFound(`no request with id ${id}; \`estca pending\` lists the waiting ones`);
  if (e.state !== "pending") throw conflict(`request ${id} is already ${e.state}${e.reason ? ` (${e.reason})` : ""}`);
  if (decision === "rejected" && !reason.trim()) throw badRequest("a rejection needs a reason: the client is told it");
  if (!store.enrollments.decide(id, decision, reason.trim() || (decision === "approved" ? "approved" : ""), by)) {
    throw conflict(`request ${id} was decided by someone else just now`);
  }
  return store.enrollments.get(id)!;
}
