import type pg from "pg";
import { BINARY_COPY_HEADER, BINARY_COPY_TRAILER } from "./copy-buffer.ts";
import { type CopyStream, type CopyTarget, openCopy } from "./copy-writer.ts";

interface Lane {
  client: pg.ClientBase;
  copy: CopyStream | undefined;
  /** The last write, until the socket has taken it (backpressure). */
  busy: Promise<void> | undefined;
}

/**
 * COPY chunks spread over one or more connections: each chunk goes whole to the next connection whose
 * socket can take it, so several backends parse and insert at once (a single COPY is bound by one
 * backend's CPU). Rows never span chunks, so any chunk can go anywhere; each connection's COPY is its
 * own statement (and, outside a transaction, its own commit), so callers that need one atomic result
 * load into a table nobody else sees yet and publish it afterwards.
 *
 * COPYs open on first use and close with `finish()`, which returns the rows the server confirmed (the
 * sum of the `COPY n` tags); writing again opens new ones (a caller can finish, use a connection for
 * something else, and go on).
 */
export class CopyFanout {
  private readonly lanes: Lane[];
  private next = 0;
  private failure: unknown;

  constructor(
    clients: readonly pg.ClientBase[],
    private readonly target: CopyTarget,
  ) {
    if (clients.length === 0) throw new Error("CopyFanout needs at least one connection");
    this.lanes = clients.map((client) => ({ client, copy: undefined, busy: undefined }));
  }

  get width(): number {
    return this.lanes.length;
  }

  /** Hands `chunk` (whole rows) to a connection; resolves once one can take the next chunk. */
  async write(chunk: Uint8Array): Promise<void> {
    this.throwIfFailed();
    let lane = this.freeLane();
    while (!lane) {
      await Promise.race(this.lanes.map((l) => l.busy));
      this.throwIfFailed();
      lane = this.freeLane();
    }
    if (!lane.copy) {
      lane.copy = openCopy(lane.client, this.target);
      if (this.target.format === "binary") this.send(lane, BINARY_COPY_HEADER);
    }
    this.send(lane, chunk);
  }

  /** Ends every open COPY; returns the rows they loaded (server-confirmed). */
  async finish(): Promise<number> {
    let rows = 0;
    for (const lane of this.lanes) {
      if (!lane.copy) continue;
      if (this.target.format === "binary") this.send(lane, BINARY_COPY_TRAILER);
      const copy = lane.copy;
      lane.copy = undefined;
      await lane.busy;
      this.throwIfFailed();
      rows += await copy.end();
    }
    return rows;
  }

  /** Abandons every open COPY (the server rolls each back) and waits until they have closed. */
  async abort(error: Error): Promise<void> {
    await Promise.all(
      this.lanes.map(async (lane) => {
        const copy = lane.copy;
        lane.copy = undefined;
        await copy?.abort(error);
      }),
    );
  }

  /** A lane whose socket has taken its last chunk, round-robin so that every backend gets work. */
  private freeLane(): Lane | undefined {
    for (let k = 0; k < this.lanes.length; k++) {
      const lane = this.lanes[(this.next + k) % this.lanes.length]!;
      if (!lane.busy) {
        this.next = (this.next + k + 1) % this.lanes.length;
        return lane;
      }
    }
    return undefined;
  }

  private send(lane: Lane, data: Uint8Array): void {
    const writing = lane.copy!.write(data).then(
      () => {
        if (lane.busy === writing) lane.busy = undefined;
      },
      (error: unknown) => {
        this.failure ??= error;
        if (lane.busy === writing) lane.busy = undefined;
      },
    );
    lane.busy = writing;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
