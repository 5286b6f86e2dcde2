import type { Command } from "commander";
import { ExitCode } from "../errors.ts";
import { CommandContext, type GlobalOptions, reportFailure } from "./context.ts";

/** Exit code chosen by the last action; main() returns it. */
export const exitState = { code: ExitCode.ok as number };

/**
 * Wraps a command handler: builds the context from global options, runs the handler, renders any
 * failure, closes pools, and records the exit code (a handler may return one, e.g. 3 on mismatch).
 */
export function action<A extends unknown[]>(
  handler: (ctx: CommandContext, ...args: A) => Promise<number | undefined>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const ctx = new CommandContext(command.optsWithGlobals() as GlobalOptions);
    try {
      exitState.code = (await handler(ctx, ...(args.slice(0, -1) as A))) ?? ExitCode.ok;
    } catch (error) {
      ctx.progress.stop();
      exitState.code = reportFailure(ctx.out, error);
    } finally {
      await ctx.close();
    }
  };
}
