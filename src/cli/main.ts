import { Command, CommanderError } from "commander";
import { ExitCode } from "../errors.ts";
import { PGSHIFT_VERSION } from "../version.ts";
import { exitState } from "./action.ts";
import { commandGroups } from "./commands/index.ts";

/** `json`: usage errors are written as JSON lines too (the caller asked for `--json`). */
export function buildProgram(options: { json?: boolean } = {}): Command {
  const program = new Command("pgshift")
    .description(
      "Move data onto PostgreSQL without losing a row, switch over without downtime, keep it safe.",
    )
    .version(PGSHIFT_VERSION, "-V, --version")
    .option("--json", "print the result object as JSON on stdout (progress as JSON lines on stderr)")
    .option(
      "--to <url>",
      "target database URL (default: DATABASE_URL, PG* variables, else the managed local instance)",
    )
    .option("--schema <name>", "target schema")
    .option("--jobs <n>", "parallel workers")
    .option("--config <file>", "settings file (default: ./pgshift.config.json when present)")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  for (const register of commandGroups) register(program);
  for (const command of [program, ...allCommands(program)]) {
    command.exitOverride();
    if (options.json)
      command.showHelpAfterError(false).configureOutput({
        outputError: (text, write) =>
          write(`${JSON.stringify({ event: "error", error: "usage", message: text.trim() })}\n`),
      });
  }
  program.addHelpText(
    "after",
    "\nExit codes: 0 ok, 1 failure, 2 usage or settings error, 3 verification mismatch,\n130/143 stopped by SIGINT/SIGTERM (the output says how to resume).\nDocs: README.md, docs/reliability.md",
  );
  return program;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((child) => [child, ...allCommands(child)]);
}

/** Runs the CLI and returns the process exit code (0 ok, 1 failure, 2 usage, 3 mismatch). */
export async function main(argv: readonly string[]): Promise<number> {
  exitState.code = ExitCode.ok;
  const json = argv.includes("--json");
  const program = buildProgram({ json });
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help"
      ) {
        return ExitCode.ok;
      }
      if (json)
        process.stdout.write(
          `${JSON.stringify({ ok: false, error: "usage", message: error.message.replace(/^error: /, "") }, null, 2)}\n`,
        );
      return ExitCode.usage;
    }
    throw error;
  }
  return exitState.code;
}
