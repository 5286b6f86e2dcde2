import pg from "pg";
import { CUTOVER_CHANNEL } from "./cutover-schema.ts";
import { readCutover } from "./cutover-state.ts";
import type { CutoverPhase } from "./phases.ts";

export interface PhaseWatcherOptions {
  pool: pg.Pool;
  name: string;
  /** Called with the phase stored in PostgreSQL, and its revision, whenever a notification or a poll reads it. */
  onPhase: (phase: CutoverPhase, revision: string) => void;
  /** Poll interval while the LISTEN connection is down (default 500 ms, so changes land within a second). */
  fastPollMs?: number;
  /** Safety poll interval while LISTEN works (default 10 s), in case a notification is missed. */
  slowPollMs?: number;
  /** Called when a refresh fails (the last known phase stays in force). */
  onError?: (error: unknown) => void;
}

export interface PhaseWatcherState {
  listening: boolean;
  reconnects: number;
  refreshes: number;
  refreshErrors: number;
  lastRefreshAt: string | null;
}

/**
 * Keeps a cutover's phase current: LISTEN on a dedicated connection (not taken from the pool, so the
 * application's pool keeps its full size), a re-read on every notification for this cutover, and a
 * poll as fallback that speeds up while the listener is down. The listener reconnects with capped
 * backoff and re-reads after reconnecting, since notifications sent meanwhile are lost.
 */
export class PhaseWatcher {
  readonly state: PhaseWatcherState = {
    listening: false,
    reconnects: 0,
    refreshes: 0,
    refreshErrors: 0,
    lastRefreshAt: null,
  };
  private client: pg.Client | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoffMs = 250;
  private closed = false;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;

  constructor(private readonly options: PhaseWatcherOptions) {}

  async start(): Promise<void> {
    await this.connect();
    this.schedulePoll();
  }

  /** Reads the phase now (coalescing concurrent requests into one query in flight plus one after). */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          const row = await readCutover(this.options.pool, this.options.name);
          this.state.refreshes++;
          this.state.lastRefreshAt = new Date().toISOString();
          if (row && !this.closed) this.options.onPhase(row.phase, row.revision);
        } while (this.refreshAgain && !this.closed);
      } catch (error) {
        this.state.refreshErrors++;
        this.options.onError?.(error);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      ...(this.options.pool.options as pg.ClientConfig),
      application_name: "pgshift-cutover-listener",
    });
    client.on("error", () => this.lost(client));
    client.on("end", () => this.lost(client));
    client.on("notification", (message) => {
      if (message.channel === CUTOVER_CHANNEL && message.payload === this.options.name) void this.refresh();
    });
    try {
      await client.connect();
      await client.query(`listen ${CUTOVER_CHANNEL}`);
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      this.options.onError?.(error);
      this.scheduleReconnect();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.state.listening = true;
    this.backoffMs = 250;
    this.schedulePoll();
    // Changes made while we were not listening sent notifications we never saw.
    await this.refresh();
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.state.listening = false;
    client.removeAllListeners("notification");
    client.end().catch(() => undefined);
    if (!this.closed) {
      this.schedulePoll();
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.backoffMs * (0.75 + Math.random() * 0.5);
    this.backoffMs = Math.min(this.backoffMs * 2, 5_000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.state.reconnects++;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private schedulePoll(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.closed) return;
    const interval = this.state.listening
      ? (this.options.slowPollMs ?? 10_000)
      : (this.options.fastPollMs ?? 500);
    this.pollTimer = setTimeout(async () => {
      await this.refresh();
      this.schedulePoll();
    }, interval);
    this.pollTimer.unref();
  }

  /** For tests and operators: drop the LISTEN connection as a network failure would. */
  dropConnection(): void {
    const client = this.client;
    if (client) {
      this.lost(client);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    this.state.listening = false;
    if (client) {
      client.removeAllListeners();
      client.on("error", () => undefined);
      await client.end().catch(() => undefined);
    }
    await this.refreshing;
  }
}
