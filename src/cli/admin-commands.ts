import type { Command } from "commander";
import { decideEnrollment } from "../ra/approvals.ts";
import { action, dataOption, table } from "./common.ts";
import { openStore } from "./user-commands.ts";

function operator(): string {
  return `cli:${process.env.USER ?? "operator"}`;
}

export function registerAdminCommands(program: Command): void {
  program
    .command("pending")
    .description("list requests waiting for approval")
    .addOption(dataOption())
    .option("--json", "machine-readable output")
    .action(
      action((o: { data: string; json?: boolean }) => {
        const store = openStore(o.data);
        try {
          const items = store.enrollments.list("pending").map((e) => ({ id: e.id, created: new Date(e.createdAt).toISOString(), profile: e.profile, requester: e.requester, subject: e.subject, sans: e.sans }));
          if (o.json) process.stdout.write(JSON.stringify(items, null, 2) + "\n");
          else if (!items.length) process.stdout.write("no requests are waiting\n");
          else process.stdout.write(table([["ID", "CREATED", "PROFILE", "REQUESTER", "SUBJECT"], ...items.map((e) => [String(e.id), e.created.slice(0, 19), e.profile, e.requester, e.subject])]));
        } finally {
          store.close();
        }
      }),
    );
  for (const [cmd, decision] of [
    ["approve", "approved"],
    ["reject", "rejected"],
  ] as const) {
    const c = program
      .command(`${cmd} <id>`)
      .description(decision === "approved" ? "approve a held request; the client gets its certificate when it polls again" : "reject a held request; the client gets 403 with the reason")
      .addOption(dataOption());
    if (decision === "rejected") c.requiredOption("--reason <text>", "why: the client is told");
    else c.option("--reason <text>", "note kept with the decision", "approved");
    c.action(
      action((id: string, o: { data: string; reason: string }) => {
        const store = openStore(o.data);
        try {
          const e = decideEnrollment(store, Number(id), decision, operator(), o.reason);
          process.stdout.write(`request ${e.id} (${e.subject}) ${decision}\n`);
        } finally {
          store.close();
        }
      }),
    );
  }
  program
    .command("requests")
    .description("show the latest EST requests with their outcome and exact failure reason")
    .addOption(dataOption())
    .option("--client <text>", "only requests whose client identity or address contains this")
    .option("--failures", "only failed requests")
    .option("--limit <n>", "at most this many", "50")
    .option("--json", "machine-readable output")
    .action(
      action((o: { data: string; client?: string; failures?: boolean; limit: string; json?: boolean }) => {
        const store = openStore(o.data);
        try {
          const items = store.requests.list({ client: o.client, failuresOnly: o.failures, limit: Number(o.limit) || 50 });
          if (o.json) process.stdout.write(JSON.stringify(items, null, 2) + "\n");
          else
            process.stdout.write(
              table([
                ["TIME", "OP", "LABEL", "CLIENT", "TLS", "STATUS", "REASON"],
                ...items.map((r) => [new Date(r.at).toISOString().slice(0, 19), r.operation, r.label ?? "-", r.clientIdentity ?? r.clientAddr ?? "-", r.tlsVersion ?? "-", String(r.status), r.reason ?? ""]),
              ]),
            );
        } finally {
          store.close();
        }
      }),
    );
}
