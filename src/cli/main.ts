import "reflect-metadata";
import { Command } from "commander";
import { registerAdminCommands } from "./admin-commands.ts";
import { registerCertCommands } from "./cert-commands.ts";
import { registerServerCommands } from "./server-commands.ts";
import { registerUserCommands } from "./user-commands.ts";
import { registerLifecycleCommands } from "./lifecycle-commands.ts";

export function buildProgram(): Command {
  const program = new Command("estca")
    .description("A whole private PKI in one process: EST server, RA, PKCS#11-backed CA, CRL/OCSP and web UI")
    .showHelpAfterError("(run with --help for usage)")
    .version("0.1.0");
  registerServerCommands(program);
  registerUserCommands(program);
  registerCertCommands(program);
  registerAdminCommands(program);
  registerLifecycleCommands(program);
  return program;
}

const isMain = process.argv[1] && /(?:^|[/\\])(?:main\.ts|estca(?:\.js)?)$/.test(process.argv[1]);
if (isMain) {
  await buildProgram().parseAsync(process.argv);
}
