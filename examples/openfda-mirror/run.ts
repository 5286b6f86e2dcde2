// `node bin/run-ts.js examples/openfda-mirror/run.ts` — mirrors seven openFDA endpoints (served by a local
// fake API) into a private PostgreSQL, then reads through the fallback reader while PostgreSQL is stopped.
// MIRROR_RECORDS sets the records per endpoint (default 5000). Starts and removes its own instance.
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  destroyLocalInstance,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../../src/local/instance.ts";
import { createPool } from "../../src/pg/pool.ts";
import { runMirrorFlow } from "./mirror-flow.ts";

const started = Date.now();
const log = (line: string) =>
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
const work = await mkdtemp(join(tmpdir(), "pgshift-openfda-"));
// the server may run as another user (postgres when this runs as root): it must reach its data directory
await chmod(work, 0o755);
const instance = { name: `openfda-${process.pid}`, baseDir: join(work, "pg"), ephemeral: true };
try {
  await startLocalInstance(instance);
  log(`private PostgreSQL started`);
  // reads must not queue behind a retried connect once the server is gone: the reader's breaker decides
  const pool = createPool({
    url: localInstanceUrl(instance),
    max: 24,
    retry: false,
    connectTimeoutMs: 2_000,
  });
  try {
    const result = await runMirrorFlow({
      pool,
      cacheDir: join(work, "cache"),
      records: Number(process.env.MIRROR_RECORDS ?? 5000),
      stopPostgres: async () => {
        await stopLocalInstance(instance);
      },
      log,
    });
    log(result.ok ? "mirror flow complete: every step checked" : "mirror flow FAILED a check (see above)");
    process.exitCode = result.ok ? 0 : 3;
  } finally {
    await pool.end().catch(() => undefined);
  }
} catch (error) {
  console.error(
    `openfda-mirror example failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exitCode = 1;
} finally {
  await destroyLocalInstance(instance).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}
