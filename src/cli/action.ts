import type { Command } from "commander";
import { ExitCode } from "../errors.ts";
import type { CommandContext, GlobalOptions } from "./context.ts";

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * SIGINT/SIGTERM abort the command's signal: the library stops at its next clean boundary (a chunk, a
 * table, a migration), and the command prints what is complete and how to resume. A second signal
 * exits at once (nothing is lost: uncommitted work rolls back, committed chunks are checkpointed).
 */
function onStopSignals(ctx: CommandContext): () => void {
  const handlers = (Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]).map((name) => {
    const handler = () => {
      // a command that does not stop by its signal stops the way Node would have stopped it
      if (!ctx.signalObserved) {
        ctx.progress.stop();
        process.exit(SIGNAL_EXIT[name]);
      }
      if (ctx.interruptedBy) {
        ctx.out.notice(`pgshift: ${name} again: exiting now (uncommitted work is rolled back)`);
        process.exit(SIGNAL_EXIT[name]);
      }
      ctx.out.notice(
        `pgshift: ${name}: stopping at the next clean boundary (chunk, table or migration); send it again to exit at once`,
      );
      ctx.interrupt(name);
    };
    process.on(name, handler);
    return () => process.off(name, handler);
  });
  return () => {
    for (const remove of handlers) remove();
  };
}

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
    // Loaded when a command runs, not when the CLI starts: settings (zod), pg and the progress bars
    // are not needed for --version, --help or a usage error.
    const { CommandContext, reportFailure } = await import("./context.ts");
    const ctx = new CommandContext(command.optsWithGlobals() as GlobalOptions);
    const stopSignals = onStopSignals(ctx);
    try {
      exitState.code = (await handler(ctx, ...(args.slice(0, -1) as A))) ?? ExitCode.ok;
    } catch (error) {
      ctx.progress.stop();
      exitState.code = reportFailure(ctx.out, error, ctx.targetIdentity);
    } finally {
      stopSignals();
      await ctx.close();
    }
    // The conventional codes of a run stopped by a signal (128 + signal number), whatever it printed.
    if (ctx.interruptedBy) exitState.code = SIGNAL_EXIT[ctx.interruptedBy] ?? ExitCode.failure;
  };
}
