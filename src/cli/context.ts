import type pg from "pg";
import { loadSettings, type RawSettings, type ResolvedSettings } from "../config/settings.ts";
import { asPgshiftError, ExitCode } from "../errors.ts";
import { type ResolvedTarget, resolveTarget } from "../local/target.ts";
import { createPool, describeConnectionError, describeTarget, type TargetIdentity } from "../pg/pool.ts";
import { Output } from "./output.ts";
import { ProgressRenderer } from "./progress-renderer.ts";

/** Options every command accepts (declared once on the root program). */
export interface GlobalOptions {
  json?: boolean;
  to?: string;
  schema?: string;
  jobs?: string;
  config?: string;
}

/** What a command action gets: output, validated settings, and a lazily connected target. */
export class CommandContext {
  readonly out: Output;
  readonly progress: ProgressRenderer;
  private resolved?: ResolvedSettings;
  private target?: ResolvedTarget;
  private pools: pg.Pool[] = [];
  private readonly abort = new AbortController();
  /** The signal that interrupted this command (SIGINT, SIGTERM), once one did. */
  interruptedBy: NodeJS.Signals | undefined;

  constructor(
    readonly globals: GlobalOptions,
    private readonly flagSettings: RawSettings = {},
  ) {
    this.out = new Output({ json: Boolean(globals.json) });
    this.progress = new ProgressRenderer(this.out);
  }

  /** Settings from flags > env > pgshift.config.json > defaults, validated once. */
  get settings(): ResolvedSettings["settings"] {
    if (!this.resolved) {
      const flags: RawSettings = { ...this.flagSettings };
      if (this.globals.to !== undefined) flags.to = this.globals.to;
      if (this.globals.schema !== undefined) flags.schema = this.globals.schema;
      if (this.globals.jobs !== undefined)
        flags.jobs = /^\d+$/.test(this.globals.jobs) ? Number(this.globals.jobs) : this.globals.jobs;
      this.resolved = loadSettings({
        flags,
        ...(this.globals.config ? { configFile: this.globals.config } : {}),
      });
      if (this.resolved.settings.to) {
        try {
          this.out.addSecret(decodeURIComponent(new URL(this.resolved.settings.to).password));
        } catch {
          // validated already; nothing to add
        }
      }
    }
    return this.resolved.settings;
  }

  get resolvedSettings(): ResolvedSettings {
    void this.settings;
    return this.resolved!;
  }

  /** The target URL: configured, or the managed local instance started on demand (said in one line). */
  async targetUrl(): Promise<ResolvedTarget> {
    if (!this.target) {
      this.target = await resolveTarget(this.settings, (message) => this.out.notice(message));
      try {
        this.out.addSecret(decodeURIComponent(new URL(this.target.url).password));
      } catch {
        // not a URL with a password
      }
    }
    return this.target;
  }

  /** A pool on the target with pgshift's session settings; closed when the command ends. */
  async pool(options: { max?: number } = {}): Promise<pg.Pool> {
    const { url } = await this.targetUrl();
    const pool = createPool({
      url,
      max: options.max ?? Math.max(4, this.settings.jobs + 2),
      lockTimeoutMs: this.settings.lockTimeoutMs,
      statementTimeoutMs: this.settings.statementTimeoutMs,
    });
    this.pools.push(pool);
    return pool;
  }

  /** Fires on SIGINT/SIGTERM: pass it to the library call, which stops at its next clean boundary. */
  get signal(): AbortSignal {
    this.signalObserved = true;
    return this.abort.signal;
  }

  /** Whether the command handed its signal to the library (otherwise a signal ends it at once). */
  signalObserved = false;

  interrupt(signal: NodeJS.Signals): void {
    this.interruptedBy ??= signal;
    this.abort.abort(signal);
  }

  /** Where this command connected (password-free), once a pool was asked for. */
  get targetIdentity(): TargetIdentity | undefined {
    return this.target ? describeTarget(this.target.url) : undefined;
  }

  async close(): Promise<void> {
    this.progress.stop();
    await Promise.all(this.pools.map((pool) => pool.end().catch(() => undefined)));
    this.pools = [];
  }
}

/**
 * Renders any failure once, with its code, and returns the exit code to use. A lost connection that no
 * layer below described yet is named here with the command's target (host, port, database, reason), the
 * way `check` reports a failed connect: never "internal".
 */
export function reportFailure(out: Output, error: unknown, target?: TargetIdentity): number {
  const failure = (target && describeConnectionError(error, target)) || asPgshiftError(error);
  out.error(failure.toJSON(), failure.message);
  if (failure.code === "internal" && error instanceof Error && error.stack && process.env.PGSHIFT_DEBUG) {
    out.stderr.write(`${out.scrub(error.stack)}\n`);
  }
  return failure.exitCode ?? ExitCode.failure;
}
