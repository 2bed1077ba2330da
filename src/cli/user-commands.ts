import type { Command } from "commander";
import { dataPaths } from "../config/paths.ts";
import { loadConfig } from "../config/load.ts";
import { EstcaError, conflict, notFound } from "../errors.ts";
import { generatePassword, hashPassword } from "../ra/passwords.ts";
import { Store } from "../store/index.ts";
import { isInitialized } from "../instance/open.ts";
import { action, collect, dataOption, isoDay, table } from "./common.ts";

/** Opens only the store, for commands that need neither the token nor the CA. */
export function openStore(dir: string): Store {
  if (!isInitialized(dir)) throw new EstcaError("config", `${dataPaths(dir).dir} is not an initialized estca data directory: run \`estca init --data ${dir}\``);
  return Store.open(dataPaths(dir).db);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

export function registerUserCommands(program: Command): void {
  const user = program.command("user").description("manage EST enrollment users (HTTP Basic)");
  user
    .command("add <name>")
    .description("add a user; prints a generated password unless --password-stdin")
    .addOption(dataOption())
    .option("--password-stdin", "read the password from standard input")
    .option("--label <label>", "profile (EST label) the user may enrol under; repeatable; * for all (default: the default profile)", collect)
    .option("--admin", "create a web UI administrator instead of an EST user")
    .action(
      action(async (name: string, o: { data: string; passwordStdin?: boolean; label?: string[]; admin?: boolean }) => {
        if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) throw new EstcaError("bad_request", `user name "${name}" must be 1-64 letters, digits, . _ @ or -`);
        const labels = o.label ?? [];
        const config = loadConfig(dataPaths(o.data).config);
        for (const l of labels) if (l !== "*" && !(l in config.profiles)) throw notFound(`--label ${l}: no profile of that name in config.yaml (profiles: ${Object.keys(config.profiles).join(", ")})`);
        const password = o.passwordStdin ? await readStdin() : generatePassword();
        if (!password) throw new EstcaError("bad_request", "the password read from standard input is empty");
        const store = openStore(o.data);
        try {
          const role = o.admin ? "admin" : "est";
          if (!store.users.add({ name, passwordHash: hashPassword(password), labels, role })) throw conflict(`${role === "admin" ? "admin" : "user"} "${name}" already exists; remove it first to change it`);
          process.stdout.write(`added ${role === "admin" ? "admin" : "user"} ${name}${labels.length ? ` for ${labels.join(", ")}` : " for the default profile"}\n`);
          if (!o.passwordStdin) process.stdout.write(`password: ${password}\n(shown only now)\n`);
        } finally {
          store.close();
        }
      }),
    );
  user
    .command("list")
    .description("list EST users")
    .addOption(dataOption())
    .option("--json", "machine-readable output")
    .action(
      action((o: { data: string; json?: boolean }) => {
        const store = openStore(o.data);
        try {
          const users = store.users.list("est").map((u) => ({ name: u.name, labels: u.labels.length ? u.labels : ["default"], created: new Date(u.createdAt).toISOString() }));
          if (o.json) process.stdout.write(JSON.stringify(users, null, 2) + "\n");
          else process.stdout.write(table([["NAME", "PROFILES", "CREATED"], ...users.map((u) => [u.name, u.labels.join(","), isoDay(Date.parse(u.created))])]));
        } finally {
          store.close();
        }
      }),
    );
  user
    .command("remove <name>")
    .description("remove an EST user")
    .addOption(dataOption())
    .action(
      action((name: string, o: { data: string }) => {
        const store = openStore(o.data);
        try {
          if (!store.users.remove(name, "est")) throw notFound(`no user "${name}"; \`estca user list\` shows who exists`);
          process.stdout.write(`removed user ${name}\n`);
        } finally {
          store.close();
        }
      }),
    );
}
