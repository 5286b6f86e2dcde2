import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { type Fixture, makeFixture } from "../verify/fixture.ts";
import { assertCleanFailure, jsonResult, startCli } from "./fault-helpers.ts";

/**
 * Every command that talks to the target says what `check` says when the server cannot be reached:
 * host, port, database and the reason, code connection_failed; never "internal", never a stack trace.
 */
let fixture: Fixture;
let dir: string;
let closedPort: number;

before(async () => {
  fixture = makeFixture({ items: 20 });
  dir = mkdtempSync(join(tmpdir(), "pgshift-connerr-"));
  writeFileSync(join(dir, "a.ndjson"), '{"id":1}\n');
  // a port nothing listens on: taken, then given back
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closedPort = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

after(() => {
  fixture?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const commands: [string, (url: string) => string[]][] = [
  ["check", (url) => ["check", "--to", url]],
  ["import (SQLite)", (url) => ["import", fixture.path, "--to", url]],
  ["import (documents)", (url) => ["import", `ndjson:${join(dir, "a.ndjson")}`, "--key", "/id", "--to", url]],
  ["verify", (url) => ["verify", fixture.path, "--to", url]],
  ["cutover list", (url) => ["cutover", "list", "--to", url]],
  ["migrate status", (url) => ["migrate", "status", "--to", url, "--dir", dir]],
];

for (const [name, args] of commands) {
  it(`${name}: an unreachable server is named with host, port and reason`, async () => {
    const url = `postgres://someone:marker-pw-13@127.0.0.1:${closedPort}/appdb`;
    const run = await startCli([...args(url), "--json"], {}, dir).done;
    assertCleanFailure(run, name);
    const failure = jsonResult<{ error: string; message: string; host: string; port: number }>(run);
    assert.equal(failure.error, "connection_failed", failure.message);
    assert.match(
      failure.message,
      new RegExp(`could not connect to 127\\.0\\.0\\.1:${closedPort}/appdb as someone: .*ECONNREFUSED`),
    );
    assert.equal(failure.host, "127.0.0.1");
    assert.equal(failure.port, closedPort);
    assert.doesNotMatch(`${run.stdout}${run.stderr}`, /marker-pw-13/);
  });
}
