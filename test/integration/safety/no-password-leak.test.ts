import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { runCli, stderrText } from "../../helpers/cli.ts";
import { serverUrl, useTestDatabase } from "../../helpers/database.ts";
import { quoteIdent } from "../../../src/pg/quote.ts";
import { makeSqlite } from "../import/sqlite-fixtures.ts";

/**
 * Every command, with a marker password in every input channel (flag, DATABASE_URL, PGSHIFT_* env,
 * PG* env, pgshift.config.json) and in malformed URLs: the marker must appear in no stdout, no stderr,
 * no file written, and no row of pgshift's tables.
 */
const MARKER = "Mk7pw-9f3aQz";
const db = useTestDatabase("leak");
const role = `pgshift_leak_${process.pid}`;
const work = mkdtempSync(join(tmpdir(), "pgshift-leak-"));

let goodUrl: string;
let sqlite: string;
let ndjson: string;
let migrations: string;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = join(dir, entry);
    return statSync(full).isDirectory() ? files(full) : [full];
  });
}

interface Channel {
  name: string;
  env?: NodeJS.ProcessEnv;
  flag?: string[];
  config?: Record<string, unknown>;
}

function channels(url: string): Channel[] {
  const parsed = new URL(url.trim());
  return [
    { name: "--to", flag: ["--to", url] },
    { name: "--to=", flag: [`--to=${url}`] },
    { name: "DATABASE_URL", env: { DATABASE_URL: url } },
    { name: "PGSHIFT_TO", env: { PGSHIFT_TO: url } },
    { name: "PGSHIFT_DATABASE_URL", env: { PGSHIFT_DATABASE_URL: url } },
    { name: "config file", config: { to: url } },
    {
      name: "PG*",
      env: {
        PGHOST: parsed.hostname,
        PGPORT: parsed.port,
        PGUSER: decodeURIComponent(parsed.username),
        PGPASSWORD: decodeURIComponent(parsed.password),
        PGDATABASE: parsed.pathname.slice(1),
      },
    },
  ];
}

function malformed(url: string): string[] {
  const rest = url.replace(/^postgres(ql)?:\/\//, "");
  return [
    `postgres//${rest}`,
    `postgres:/${rest}`,
    `postgres:${rest}`,
    rest,
    ` ${url}`,
    `${url} `,
    `mysql://${rest}`,
    url.replace(/:(\d+)\//, ":99999/"),
    url.replace(MARKER, `${MARKER} x`),
    url.replace(MARKER, `${MARKER}@`),
  ];
}

let run = 0;
function commands(): string[][] {
  const schema = `s${++run}`;
  return [
    ["check"],
    ["config", "show"],
    ["import", sqlite, "--schema", schema],
    ["verify", sqlite, "--schema", schema],
    ["import", `ndjson:${ndjson}`, "--schema", schema, "--table", "docs"],
    ["verify", `ndjson:${ndjson}`, "--schema", schema, "--table", "docs"],
    ["import", sqlite, "--schema", schema], // exists already: an error naming the tables
    ["migrate", "status", "--dir", migrations],
    ["migrate", "up", "--dir", migrations],
    ["cutover", "list"],
    ["cutover", "status", "nope"],
    ["local", "status", "--name", "absent"],
  ];
}

interface Run {
  /** What ran (holds the marker: it is the input). */
  command: string;
  /** Everything pgshift printed or wrote. */
  output: string;
}

async function runIn(channel: Channel, args: string[], json: boolean): Promise<Run> {
  const cwd = mkdtempSync(join(work, "run-"));
  if (channel.config) writeFileSync(join(cwd, "pgshift.config.json"), JSON.stringify(channel.config));
  const env = {
    PGSHIFT_REPORT_DIR: join(cwd, "reports"),
    PGSHIFT_LOCAL_DIR: join(cwd, "local"),
    ...channel.env,
  };
  const argv = [...(json ? ["--json"] : []), ...(channel.flag ?? []), ...args];
  const result = await runCli(argv, { cwd, env });
  const written = files(cwd)
    .filter((f) => !f.endsWith("pgshift.config.json"))
    .map((f) => `${f}:\n${readFileSync(f, "utf8")}`);
  return {
    command: `${channel.name}: pgshift ${argv.join(" ")} -> ${result.code}`,
    output: [result.stdout, result.stderr, ...written].join("\n"),
  };
}

async function inBatches<T>(jobs: (() => Promise<T>)[], size: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < jobs.length; i += size)
    out.push(...(await Promise.all(jobs.slice(i, i + size).map((j) => j()))));
  return out;
}

function leaks(runs: Run[]): string[] {
  return runs
    .filter((r) => r.output.includes(MARKER) || r.output.includes(encodeURIComponent(MARKER)))
    .map((r) => `${r.command}\n${r.output}`);
}

describe("no password reaches any output, report or table", () => {
  before(async () => {
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    await admin.query(`create role ${quoteIdent(role)} login superuser password '${MARKER}'`);
    await admin.end();
    const url = new URL(db().url);
    url.username = role;
    url.password = MARKER;
    goodUrl = url.toString();
    sqlite = makeSqlite(
      join(work, "app.db"),
      `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
       INSERT INTO items VALUES (1, 'a'), (2, 'b');`,
    );
    ndjson = join(work, "docs.ndjson");
    writeFileSync(ndjson, '{"id": 1}\n{"id": 2}\n');
    migrations = join(work, "migrations");
    mkdirSync(migrations);
    writeFileSync(join(migrations, "20240101000000_first.sql"), "-- migrate:up\ncreate table m (id int);\n");
  });

  after(async () => {
    await db().pool.query(`drop owned by ${quoteIdent(role)} cascade`);
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    await admin.query(`drop role if exists ${quoteIdent(role)}`);
    await admin.end();
  });

  it("a working URL with the marker password, in every channel, through every command", async () => {
    const runs: Run[] = [];
    // one at a time: imports into one database take its import lock
    for (const channel of channels(goodUrl)) {
      const full = channel.name === "--to" || channel.name === "DATABASE_URL";
      const list = full
        ? commands()
        : commands().filter((c) => ["check", "config", "cutover"].includes(c[0]!));
      for (const args of list) runs.push(await runIn(channel, args, channel.name !== "--to"));
    }
    const all = runs.map((r) => r.output).join("\n");
    // the commands really ran against the database (not just failed at settings)
    assert.match(all, /rows loaded into schema/);
    assert.match(all, /"status": "identical"/);
    assert.match(all, /applied 1, failed 0/);
    assert.deepEqual(leaks(runs), []);
    // pgshift's own tables: import runs, steps, migrations, cutover state...
    const { rows: tables } = await db().pool.query(
      "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where nspname = 'pgshift' and relkind = 'r'",
    );
    assert.ok(tables.length > 3, JSON.stringify(tables));
    for (const { relname } of tables) {
      const { rows } = await db().pool.query(`select t::text as row from pgshift.${quoteIdent(relname)} t`);
      for (const { row } of rows) assert.ok(!String(row).includes(MARKER), `pgshift.${relname}: ${row}`);
    }
  });

  it("malformed URLs with the marker password, in every channel, through every command", async () => {
    const jobs: (() => Promise<Run>)[] = [];
    malformed(goodUrl).forEach((url, form) => {
      for (const channel of channels(goodUrl).filter((c) => c.name !== "PG*")) {
        const bad: Channel = {
          name: `${channel.name} ${JSON.stringify(url)}`,
          ...(channel.flag ? { flag: channel.flag[0] === "--to" ? ["--to", url] : [`--to=${url}`] } : {}),
          ...(channel.env ? { env: Object.fromEntries(Object.keys(channel.env).map((k) => [k, url])) } : {}),
          ...(channel.config ? { config: { to: url } } : {}),
        };
        // Settings are resolved the same way for every command: each form through a few commands with
        // the flag (every kind of command for the first ones), a check through the other channels.
        const kinds = commands().filter((c, i, all) => all.findIndex((o) => o[0] === c[0]) === i);
        const list =
          channel.name === "--to" ? (form < 3 ? kinds : kinds.slice(0, 3)) : form < 5 ? [["check"]] : [];
        list.forEach((args, i) => jobs.push(() => runIn(bad, args, (i + jobs.length) % 2 === 0)));
      }
    });
    const runs = await inBatches(jobs, 4);
    assert.ok(runs.length >= 60, String(runs.length));
    assert.deepEqual(leaks(runs), []);
  });

  it("a URL with a leading or trailing space is refused with a message that says so", async () => {
    for (const url of [` ${goodUrl}`, `${goodUrl}\n`]) {
      const result = await runCli(["--json", "check", "--to", url], { cwd: work });
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        stderrText(result.stderr),
        /to = " ?postgres:\/\/pgshift_leak_\d+:\*{8}@.*starts or ends with whitespace/,
      );
      assert.equal(JSON.parse(result.stdout).error, "invalid_settings");
    }
  });
});
