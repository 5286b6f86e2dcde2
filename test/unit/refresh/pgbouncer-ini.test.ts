import assert from "node:assert/strict";
import { test } from "node:test";
import {
  aliasTargetOfUrl,
  pointAlias,
  readAliasTarget,
  sameTarget,
} from "../../../src/refresh/pgbouncer-ini.ts";
import { assertAliasName } from "../../../src/refresh/pgbouncer-switch.ts";

const config = [
  "; production pooler",
  "[databases]",
  "other = host=10.0.0.9 dbname=other",
  "; app = host=old dbname=commented_out",
  "app  =  host=10.0.0.5 port=5432 dbname=app_blue user=reader password='it''s secret' pool_size=20\r",
  "",
  "[pgbouncer]",
  "app = not a database line",
  "listen_port = 6432",
  "",
].join("\n");

test("readAliasTarget: the alias's line in [databases], not a comment or another section", () => {
  assert.deepEqual(readAliasTarget(config, "app"), { host: "10.0.0.5", port: "5432", dbname: "app_blue" });
  assert.deepEqual(readAliasTarget(config, "other"), { host: "10.0.0.9", port: null, dbname: "other" });
  assert.deepEqual(readAliasTarget("[databases]\nshop = host=h\n", "shop"), {
    host: "h",
    port: null,
    dbname: "shop",
  });
  assert.throws(
    () => readAliasTarget(config, "missing"),
    /alias "missing" is not in the \[databases\] section/,
  );
});

test("pointAlias: host, port and dbname replaced; the line's other settings and every other byte kept", () => {
  const edited = pointAlias(config, "app", { host: "10.0.0.6", port: "5433", dbname: "app_green" });
  const before = config.split("\n");
  const after = edited.text.split("\n");
  assert.equal(after.length, before.length);
  for (const [i, line] of before.entries()) if (i !== 4) assert.equal(after[i], line);
  assert.equal(
    after[4],
    "app  =  host=10.0.0.6 port=5433 dbname=app_green user=reader password='it''s secret' pool_size=20\r",
  );
  assert.equal(edited.oldLine, `${before[4]}\n`);
  // and back again gives the original line's settings
  const back = pointAlias(edited.text, "app", { host: "10.0.0.5", port: "5432", dbname: "app_blue" });
  assert.equal(back.text, config);
});

test("pointAlias adds dbname when the line had none; a file without a final newline stays so", () => {
  const edited = pointAlias("[databases]\nshop = host=h", "shop", {
    host: null,
    port: null,
    dbname: "shop_green",
  });
  assert.equal(edited.text, "[databases]\nshop = host=h dbname=shop_green");
});

test("aliasTargetOfUrl and sameTarget", () => {
  const green = aliasTargetOfUrl("postgres://u:pw@localhost:5433/app_green");
  assert.deepEqual(green, { host: "localhost", port: "5433", dbname: "app_green" });
  assert.ok(sameTarget({ host: "127.0.0.1", port: "5433", dbname: "app_green" }, green));
  assert.ok(sameTarget({ host: null, port: null, dbname: "app_green" }, green));
  assert.ok(!sameTarget({ host: "127.0.0.1", port: "5432", dbname: "app_green" }, green));
  assert.ok(!sameTarget({ host: "127.0.0.1", port: "5433", dbname: "app_blue" }, green));
  assert.throws(() => aliasTargetOfUrl("postgres://u@h:1/"), /must name its database/);
});

test("assertAliasName: admin console commands take a plain name only", () => {
  assertAliasName("app_1");
  assert.throws(() => assertAliasName("app; SHUTDOWN"), /must be a plain name/);
  assert.throws(() => assertAliasName('"app"'), /must be a plain name/);
});
