import assert from "node:assert/strict";
import { before, test } from "node:test";
import { loadModule } from "libpg-query";
import { autovacuumDisabled, sessionStateOf } from "../../../src/serve/maintenance-checks.ts";

before(async () => {
  await loadModule();
});

test("sessionStateOf: LISTEN and SET without LOCAL leak past a transaction pooler; the rest does not", () => {
  assert.equal(sessionStateOf("LISTEN jobs"), "listen");
  assert.equal(sessionStateOf("set search_path = app, public"), "session_set");
  assert.equal(sessionStateOf("SET TIME ZONE 'UTC'"), "session_set");
  assert.equal(sessionStateOf("set work_mem from current"), "session_set");
  assert.equal(sessionStateOf("select 1; set statement_timeout = 0"), "session_set");
  assert.equal(sessionStateOf("set local app.tenant = '42'"), undefined);
  assert.equal(sessionStateOf("set transaction isolation level serializable"), undefined);
  assert.equal(sessionStateOf("reset search_path"), undefined);
  assert.equal(sessionStateOf("select 'set search_path = x'"), undefined);
  assert.equal(sessionStateOf("unlisten jobs"), undefined);
  assert.equal(
    sessionStateOf("select * from t where x = 'trunc"),
    undefined,
    "a truncated text says nothing",
  );
});

test("autovacuumDisabled reads reloptions", () => {
  assert.equal(autovacuumDisabled(["autovacuum_enabled=false"]), true);
  assert.equal(autovacuumDisabled(["fillfactor=70", "autovacuum_enabled=off"]), true);
  assert.equal(autovacuumDisabled(["autovacuum_enabled=true"]), false);
  assert.equal(autovacuumDisabled(["autovacuum_vacuum_scale_factor=0"]), false);
  assert.equal(autovacuumDisabled(null), false);
});
