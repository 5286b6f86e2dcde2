// A small HTTP service on PostgreSQL, operated the way pgshift recommends: a hardened pool
// (createPool: timeouts, retries, circuit breaker), a start-up check that the schema has every shipped
// migration (assertSchemaVersion), a health server (/livez, /readyz, /status, /metrics) whose readiness
// includes the migrations, and row-level security per tenant, set per transaction with SET LOCAL.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import {
  assertSchemaVersion,
  ConnectionError,
  createPool,
  type HealthServer,
  migrationsCheck,
  startHealthServer,
  withTransaction,
} from "../../src/index.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations", import.meta.url));

export interface ServiceOptions {
  /** The application role's URL (DML only: see `pgshift provision`). */
  databaseUrl: string;
  /** Default 0: any free port. */
  port?: number;
  healthPort?: number;
  migrationsDir?: string;
}

export interface Service {
  url: string;
  healthUrl: string;
  pool: pg.Pool;
  health: HealthServer;
  close(): Promise<void>;
}

interface Note {
  id: string;
  body: string;
  created_at: Date;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  response.end(`${JSON.stringify(body)}\n`);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of request) {
    text += chunk;
    if (text.length > 64_000) throw new HttpError(413, "body over 64 kB");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "the body is not JSON");
  }
}

/** The tenant of a request: the x-tenant header (a real service takes it from its authentication). */
function tenantOf(request: IncomingMessage): string {
  const tenant = request.headers["x-tenant"];
  if (typeof tenant !== "string" || !/^[\w-]{1,64}$/.test(tenant))
    throw new HttpError(400, "send the tenant in the x-tenant header (letters, digits, - and _)");
  return tenant;
}

/** Starts the service: refuses to start unless every migration in migrationsDir is applied. */
export async function startService(options: ServiceOptions): Promise<Service> {
  const dir = options.migrationsDir ?? MIGRATIONS_DIR;
  const pool = createPool({
    url: options.databaseUrl,
    max: 10,
    applicationName: "notes-service",
    connectTimeoutMs: 1_000,
    statementTimeoutMs: 5_000,
    idleInTransactionTimeoutMs: 10_000,
    // an outage costs one connection attempt per second, and a restart is noticed within a second
    breaker: { failureThreshold: 3, coolDownMs: 1_000 },
  });
  try {
    await assertSchemaVersion(pool, { dir });
  } catch (error) {
    await pool.end();
    throw error;
  }
  const health = await startHealthServer({
    pool,
    port: options.healthPort ?? 0,
    readyTimeoutMs: 500,
    checks: [migrationsCheck(pool, { dir })],
  });

  /** One transaction per request, the tenant set with SET LOCAL: PgBouncer-safe, and RLS filters rows. */
  const asTenant = async <T>(
    tenant: string,
    operation: string,
    fn: (client: pg.PoolClient) => Promise<T>,
  ) => {
    const started = performance.now();
    let ok = false;
    try {
      const result = await withTransaction(pool, async (client) => {
        await client.query("select set_config('app.tenant', $1, true)", [tenant]);
        return fn(client);
      });
      ok = true;
      return result;
    } finally {
      health.observeOperation(operation, (performance.now() - started) / 1000, ok);
    }
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== "/notes") throw new HttpError(404, `no route ${path}; try /notes`);
    const tenant = tenantOf(request);
    if (request.method === "GET") {
      const notes = await asTenant(tenant, "list_notes", async (client) => {
        const { rows } = await client.query<Note>("select id, body, created_at from notes order by id");
        return rows;
      });
      reply(response, 200, { tenant, notes });
      return;
    }
    if (request.method === "POST") {
      const body = (await readJson(request)) as { body?: unknown };
      if (typeof body.body !== "string" || !body.body) throw new HttpError(400, 'send {"body": "text"}');
      const note = await asTenant(tenant, "add_note", async (client) => {
        const { rows } = await client.query<Note>(
          "insert into notes (tenant_id, body) values ($1, $2) returning id, body, created_at",
          [tenant, body.body],
        );
        return rows[0];
      });
      reply(response, 201, note);
      return;
    }
    throw new HttpError(405, "use GET or POST");
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (error instanceof HttpError) reply(response, error.status, { error: error.message });
      // the database is away (refused, lost, or the breaker answered at once): tell the client to come back
      else if (error instanceof ConnectionError) reply(response, 503, { error: error.message });
      else reply(response, 500, { error: error instanceof Error ? error.message : String(error) });
    });
  });
  server.listen(options.port ?? 0, "127.0.0.1");
  await new Promise<void>((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    healthUrl: health.url,
    pool,
    health,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await health.close();
      await pool.end();
    },
  };
}
