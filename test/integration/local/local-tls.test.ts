import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import pg from "pg";
import { destroyLocalInstance, localInstanceUrl, startLocalInstance } from "../../../src/local/instance.ts";
import { testBinaries } from "../../helpers/binaries.ts";
import { runCli } from "../../helpers/cli.ts";

const instance = {
  name: `tls-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-tls"),
  ephemeral: true,
  binaries: testBinaries(),
};

after(async () => {
  await destroyLocalInstance(instance).catch(() => undefined);
  rmSync(instance.baseDir, { recursive: true, force: true });
});

async function connects(config: pg.ClientConfig): Promise<string> {
  const client = new pg.Client(config);
  try {
    await client.connect();
    const { rows } = await client.query("select ssl::text from pg_stat_ssl where pid = pg_backend_pid()");
    return `ok ssl=${rows[0].ssl}`;
  } catch (error) {
    return `refused: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

it("local start --tls: the url verifies the server with the CA, plain TCP is refused, check reports TLS", async () => {
  const started = await startLocalInstance({ ...instance, tls: true });
  assert.equal(started.status.tls, true);
  const url = localInstanceUrl(instance);
  const parsed = new URL(url);
  assert.equal(parsed.searchParams.get("sslmode"), "verify-full");
  assert.equal(
    parsed.searchParams.get("sslrootcert"),
    join(instance.baseDir, instance.name, "tls", "ca.crt"),
  );
  assert.equal(await connects({ connectionString: url }), "ok ssl=true");

  const plain = new URL(url);
  plain.search = "";
  const refused = await connects({ connectionString: plain.toString(), ssl: false });
  assert.match(refused, /^refused: .*no pg_hba\.conf entry .*no encryption/);
  // a server certificate signed by another CA is not trusted
  const noCa = await connects({ connectionString: plain.toString(), ssl: { rejectUnauthorized: true } });
  assert.match(noCa, /^refused: .*(self[- ]signed|unable to (get|verify))/i);

  const check = await runCli(["check", "--to", url, "--json"]);
  assert.equal(check.code, 0, check.stderr);
  const answer = JSON.parse(check.stdout);
  assert.equal(answer.tls.on, true);
  assert.match(answer.tls.version, /^TLSv1\.[23]$/);
});
