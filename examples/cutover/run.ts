// `node bin/run-ts.js examples/cutover/run.ts` — migrates two in-memory stores to PostgreSQL live.
// Target: DATABASE_URL / PGSHIFT_TO / PG* when set, else pgshift's managed local instance.
import { loadSettings } from "../../src/config/settings.ts";
import { resolveTarget } from "../../src/local/target.ts";
import { runCutoverExample } from "./migration.ts";

const started = Date.now();
const log = (line: string) =>
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
try {
  const { settings } = loadSettings({});
  const target = await resolveTarget(settings, log);
  const result = await runCutoverExample({ url: target.url, log });
  const lastChecks = result.verifications.slice(-2);
  const clean = lastChecks.every((v) => v.divergent === 0) && result.trafficErrors === 0;
  log(
    clean
      ? "migration complete: every store verified consistent"
      : "migration finished WITH DIVERGENCES (see above)",
  );
  process.exitCode = clean ? 0 : 3;
} catch (error) {
  console.error(`cutover example failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
