import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import { CrlPublisher } from "../ca/crl.ts";
import { REVOCATION_REASONS, revokeCertificate } from "../ca/revocation.ts";
import { messageOf } from "../errors.ts";
import { KEY_TYPES, type KeyType } from "../hsm/key-manager.ts";
import { rolloverInstance } from "../instance/lifecycle.ts";
import { openInstance } from "../instance/open.ts";
import { writeFileSync } from "node:fs";
import { action, dataOption } from "./common.ts";

function parseDays(v: string): number {
  const n = Number(v);
  // commander reports an InvalidArgumentError in one line; anything else would escape as a stack trace.
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("give a positive number of days (fractions allowed)");
  return n;
}

// Commands of the CA lifecycle: revocation, CRL publication, root key rollover.
export function registerLifecycleCommands(program: Command): void {
  program
    .command("revoke <serial>")
    .description("revoke a certificate and republish its issuer's CRL")
    .addOption(dataOption())
    .addOption(new Option("--reason <reason>", "RFC 5280 reason").choices([...REVOCATION_REASONS]).default("unspecified"))
    .action(
      action(async (serial: string, o: { data: string; reason: string }) => {
        const inst = openInstance(o.data);
        try {
          const rec = await revokeCertificate(inst.store, serial, o.reason);
          process.stdout.write(`revoked ${rec.serial} (${rec.subject}) at ${new Date(rec.revokedAt!).toISOString()}, reason ${rec.revocationReason}\n`);
          const issuer = inst.ca.issuerBySki(rec.issuerKey);
          if (!issuer) return;
          try {
            const crl = await new CrlPublisher(inst.ca, inst.config.crl).publish(issuer);
            process.stdout.write(`published CRL number ${crl.number} of generation ${issuer.generation}\n`);
          } catch (e) {
            // The revocation stands; a running server republishes on its next check.
            process.stderr.write(`estca: warning: the revocation is recorded but the CRL could not be signed now (${messageOf(e)}); a running server republishes it\n`);
          }
        } finally {
          inst.close();
        }
      }),
    );

  program
    .command("crl")
    .description("publish a fresh CRL for every CA key still in date; print or save the current one")
    .addOption(dataOption())
    .option("--out <file>", "write the current key's CRL (DER) here")
    .action(
      action(async (o: { data: string; out?: string }) => {
        const inst = openInstance(o.data);
        try {
          const pub = new CrlPublisher(inst.ca, inst.config.crl);
          for (const iss of pub.liveIssuers()) {
            const crl = await pub.publish(iss);
            process.stdout.write(`generation ${iss.generation}: CRL number ${crl.number}, next update ${new Date(crl.nextUpdate).toISOString()}\n`);
          }
          if (o.out) writeFileSync(o.out, inst.store.crls.latest(inst.ca.issuer.ski)!.der);
        } finally {
          inst.close();
        }
      }),
    );

  program
    .command("rollover")
    .description("root CA key update (RFC 4210 4.4): new key in the token, NewWithNew, OldWithNew, NewWithOld; or finish an interrupted one")
    .addOption(dataOption())
    .addOption(new Option("--key-type <type>", "key type of the new root (default: ca.keyType of config.yaml)").choices([...KEY_TYPES]))
    .option("--overlap <days>", "serve the rollover links this long (default: until the old root expires)", parseDays)
    .action(
      action(async (o: { data: string; keyType?: KeyType; overlap?: number }) => {
        const inst = openInstance(o.data);
        try {
          const r = await rolloverInstance(inst, { keyType: o.keyType, overlapDays: o.overlap });
          if (r.recovered) {
            process.stdout.write(
              r.recovered.what === "finished"
                ? `an interrupted rollover to generation ${r.recovered.generation} had committed; it is now finished. Nothing else was changed.\n`
                : `an interrupted rollover to generation ${r.recovered.generation} had not committed; it was undone (its key deleted). Run \`estca rollover\` again to roll over.\n`,
            );
            return;
          }
          const res = r.result!;
          const iss = inst.ca.issuer;
          const lines = [`rolled over to generation ${res.generation}: key ${iss.key.ref.label} (${iss.key.ref.keyType}) in token "${inst.km.info.tokenLabel}"`];
          const line = (role: string, c: { serialNumber: string; notAfter: Date }) => `  ${role}  serial ${c.serialNumber.toLowerCase()}  valid until ${c.notAfter.toISOString()}`;
          lines.push(line("NewWithNew", res.newRoot));
          if (res.oldWithNew && res.newWithOld) lines.push(line("OldWithNew", res.oldWithNew), line("NewWithOld", res.newWithOld));
          else lines.push("  the old root has expired: no links were made");
          lines.push(`  ${inst.paths.caPem} and the listener certificate are rewritten; a running server picks them up by itself.`);
          process.stdout.write(lines.join("\n") + "\n");
        } finally {
          inst.close();
        }
      }),
    );
}
