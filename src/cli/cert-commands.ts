import "reflect-metadata";
import { readFileSync, writeFileSync } from "node:fs";
import * as x509 from "@peculiar/x509";
import type { Command } from "commander";
import { EstcaError, badRequest, notFound } from "../errors.ts";
import { openInstance } from "../instance/open.ts";
import { csrDerFromFile } from "../pki/csr.ts";
import { toPem } from "../pki/encoding.ts";
import { RegistrationAuthority } from "../ra/registration-authority.ts";
import type { CertRecord } from "../store/index.ts";
import { action, dataOption, isoDay, table } from "./common.ts";
import { openStore } from "./user-commands.ts";

function certJson(c: CertRecord) {
  return {
    serial: c.serial,
    subject: c.subject,
    sans: c.sans,
    status: c.status,
    notBefore: new Date(c.notBefore).toISOString(),
    notAfter: new Date(c.notAfter).toISOString(),
    issuer: c.issuer,
    profile: c.profile,
    requester: c.requester,
    revokedAt: c.revokedAt ? new Date(c.revokedAt).toISOString() : null,
    revocationReason: c.revocationReason,
    supersededBy: c.supersededBy,
  };
}

export function registerCertCommands(program: Command): void {
  program
    .command("issue")
    .description("issue a certificate offline from a PKCS#10 request (PEM or DER)")
    .addOption(dataOption())
    .requiredOption("--csr <file>", "the certification request")
    .option("--profile <name>", "profile to apply", "default")
    .option("--out <file>", "write the certificate (PEM) here instead of standard output")
    .action(
      action(async (o: { data: string; csr: string; profile: string; out?: string }) => {
        let bytes: Buffer;
        try {
          bytes = readFileSync(o.csr);
        } catch (e) {
          throw new EstcaError("bad_request", `cannot read --csr ${o.csr}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
        }
        const inst = openInstance(o.data);
        try {
          const ra = new RegistrationAuthority(inst.ca, inst.store, inst.config, inst.paths.dir);
          const issued = await ra.issueOffline(o.profile, csrDerFromFile(bytes), `cli:${process.env.USER ?? "operator"}`);
          const pem = toPem(issued.der, "CERTIFICATE");
          if (o.out) {
            writeFileSync(o.out, pem);
            process.stderr.write(`issued ${issued.serial} to ${o.out}\n`);
          } else process.stdout.write(pem);
        } finally {
          inst.close();
        }
      }),
    );

  program
    .command("list")
    .description("list issued certificates, newest first")
    .addOption(dataOption())
    .option("--json", "machine-readable output")
    .option("--status <status>", "valid | revoked | superseded | expired | expiring")
    .option("--search <text>", "match subject, SAN, serial or requester")
    .option("--limit <n>", "at most this many", "100")
    .action(
      action((o: { data: string; json?: boolean; status?: string; search?: string; limit: string }) => {
        const store = openStore(o.data);
        try {
          const want = Number(o.limit) || 100;
          // The store answers in pages of at most 500 (what the UI shows); the CLI reads as many as asked for.
          const items: CertRecord[] = [];
          let total = 0;
          for (;;) {
            const page = store.certs.list({ status: o.status as never, q: o.search, limit: Math.min(500, want - items.length), offset: items.length });
            total = page.total;
            items.push(...page.items);
            if (page.items.length === 0 || items.length >= Math.min(want, total)) break;
          }
          if (o.json) process.stdout.write(JSON.stringify(items.map(certJson), null, 2) + "\n");
          else {
            process.stdout.write(table([["SERIAL", "STATUS", "NOT AFTER", "PROFILE", "SUBJECT"], ...items.map((c) => [c.serial, c.status, isoDay(c.notAfter), c.profile, c.subject])]));
            process.stdout.write(`${items.length} of ${total} certificate(s)\n`);
          }
        } finally {
          store.close();
        }
      }),
    );

  program
    .command("show <serial>")
    .description("show one certificate and its PEM")
    .addOption(dataOption())
    .option("--json", "machine-readable output")
    .action(
      action((serial: string, o: { data: string; json?: boolean }) => {
        const norm = serial.toLowerCase().replace(/[:\s]/g, "").replace(/^0x/, "");
        if (!/^[0-9a-f]+$/.test(norm)) throw badRequest(`"${serial}" is not a hexadecimal serial number`);
        const store = openStore(o.data);
        try {
          const c = store.certs.get(norm.replace(/^0+/, ""));
          if (!c) throw notFound(`no certificate with serial ${serial}; \`estca list\` shows them`);
          const pem = toPem(c.der, "CERTIFICATE");
          if (o.json) {
            process.stdout.write(JSON.stringify({ ...certJson(c), pem }, null, 2) + "\n");
            return;
          }
          const j = certJson(c);
          const cert = new x509.X509Certificate(new Uint8Array(c.der));
          process.stdout.write(
            [
              `serial:      ${j.serial}`,
              `subject:     ${j.subject}`,
              `SANs:        ${j.sans.join(", ") || "-"}`,
              `status:      ${j.status}${j.revokedAt ? ` since ${j.revokedAt} (${j.revocationReason})` : ""}${j.supersededBy ? ` by ${j.supersededBy}` : ""}`,
              `valid:       ${j.notBefore} .. ${j.notAfter}`,
              `issuer:      ${j.issuer}`,
              `profile:     ${j.profile}`,
              `requester:   ${j.requester}`,
              `key:         ${cert.publicKey.algorithm.name}`,
              pem,
            ].join("\n"),
          );
        } finally {
          store.close();
        }
      }),
    );

  program
    .command("status")
    .description("show the CA, its key, its certificates and counts")
    .addOption(dataOption())
    .option("--json", "machine-readable output")
    .action(
      action((o: { data: string; json?: boolean }) => {
        const inst = openInstance(o.data);
        try {
          const iss = inst.ca.issuer;
          const now = Date.now();
          const status = {
            ca: {
              subject: iss.cert.subject,
              generation: iss.generation,
              notBefore: iss.cert.notBefore.toISOString(),
              notAfter: iss.cert.notAfter.toISOString(),
              daysLeft: Math.floor((iss.cert.notAfter.getTime() - now) / 86400_000),
              keyType: iss.key.ref.keyType,
              keyLabel: iss.key.ref.label,
            },
            token: inst.km.info,
            caCertificates: inst.store.caCerts.all().map((c) => ({ generation: c.generation, role: c.role, status: c.status, subject: c.subject, serial: c.serial, notAfter: new Date(c.notAfter).toISOString() })),
            certificates: inst.store.certs.counts(now),
            pending: inst.store.enrollments.countPending(),
            rollover: inst.store.meta.get("rollover") ?? "none",
          };
          if (o.json) {
            process.stdout.write(JSON.stringify(status, null, 2) + "\n");
            return;
          }
          const c = status.certificates;
          process.stdout.write(
            [
              `CA:           ${status.ca.subject} (generation ${status.ca.generation})`,
              `valid:        ${status.ca.notBefore} .. ${status.ca.notAfter} (${status.ca.daysLeft} days left)`,
              `key:          ${status.ca.keyType}, label ${status.ca.keyLabel}, in token "${status.token.tokenLabel}" (${status.token.manufacturer} ${status.token.model}) via ${status.token.module}`,
              `certificates: ${c.issued} issued, ${c.valid} valid, ${c.revoked} revoked, ${c.superseded} superseded, ${c.expired} expired, ${c.expiringSoon} expiring within 30 days`,
              `pending:      ${status.pending} request(s) waiting for approval`,
              `rollover:     ${status.rollover}`,
              "CA certificates:",
              table([["GEN", "ROLE", "STATUS", "NOT AFTER", "SERIAL"], ...status.caCertificates.map((x) => [String(x.generation), x.role, x.status, x.notAfter.slice(0, 10), x.serial])]).replace(/^/gm, "  ").trimEnd(),
              "",
            ].join("\n"),
          );
        } finally {
          inst.close();
        }
      }),
    );
}
