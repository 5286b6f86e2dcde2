// `DATABASE_URL=postgres://notes_app:...@host/db node bin/run-ts.js examples/service/run.ts`
// Starts the notes service (PORT, default 8080) and its health server (HEALTH_PORT, default 9187).
import { startService } from "./service.ts";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error("set DATABASE_URL to the application role's URL (see examples/service/README.md)");
  process.exit(2);
}
try {
  const service = await startService({
    databaseUrl,
    port: Number(process.env.PORT ?? 8080),
    healthPort: Number(process.env.HEALTH_PORT ?? 9187),
  });
  console.log(`notes service on ${service.url}/notes, health on ${service.healthUrl}/readyz and /metrics`);
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => {
      void service.close().then(() => process.exit(0));
    });
} catch (error) {
  console.error(`notes service did not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
