import type { Command } from "commander";
import { registerAuditCommands } from "./audit-command.ts";
import { registerBackupCommands } from "./backup-command.ts";
import { registerCheckCommand } from "./check-command.ts";
import { registerConfigCommands } from "./config-command.ts";
import { registerCutoverCommands } from "./cutover-command.ts";
import { registerImportCommand } from "./import-command.ts";
import { registerKeysCommands } from "./keys-command.ts";
import { registerLocalCommands } from "./local-command.ts";
import { registerMigrateCommands } from "./migrate-command.ts";
import { registerMirrorCommands } from "./mirror-command.ts";
import { registerPgbouncerCommands } from "./pgbouncer-command.ts";
import { registerProvisionCommands } from "./provision-command.ts";
import { registerServeCommand } from "./serve-command.ts";
import { registerTuneCommand } from "./tune-command.ts";
import { registerRefreshCommands } from "./refresh-command.ts";
import { registerVerifyCommands } from "./verify-command.ts";

/** Every command group, in the order `pgshift --help` lists them. Add a group here. */
export const commandGroups: ((program: Command) => void)[] = [
  registerLocalCommands,
  registerCheckCommand,
  registerConfigCommands,
  registerImportCommand,
  registerVerifyCommands,
  registerKeysCommands,
  registerMigrateCommands,
  registerCutoverCommands,
  registerAuditCommands,
  registerBackupCommands,
  registerRefreshCommands,
  registerMirrorCommands,
  registerProvisionCommands,
  registerTuneCommand,
  registerServeCommand,
  registerPgbouncerCommands,
];
