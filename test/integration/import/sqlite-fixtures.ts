import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";

/** A fresh temporary directory for one test file's SQLite fixtures. */
export function fixtureDir(): string {
  return mkdtempSync(join(tmpdir(), "pgshift-sqlite-"));
}

/** Builds a SQLite file from SQL and optional row-insert callback. */
export function makeSqlite(path: string, sql: string, fill?: (db: Database.Database) => void): string {
  const db = new Database(path);
  db.pragma("foreign_keys = off");
  db.exec(sql);
  if (fill) db.transaction(() => fill(db))();
  db.close();
  return path;
}

/** Every hard case of SQLite's dynamic typing and DDL, in one small database. */
export const KITCHEN_SINK = `
CREATE TABLE "Mixed Case" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  "select" TEXT,
  "Weird Name" TEXT,
  camelCase INTEGER
);
CREATE TABLE dyn (
  id INTEGER PRIMARY KEY,
  big INTEGER,
  small INTEGER,
  r REAL,
  mixed,
  txt TEXT,
  numtxt INTEGER,
  flag BOOLEAN NOT NULL DEFAULT 0,
  notflag BOOLEAN,
  ms DATETIME,
  secs TIMESTAMP,
  iso DATETIME,
  isoz DATETIME,
  d DATE,
  doc JSON,
  notjson JSON,
  b BLOB,
  vc VARCHAR(10),
  vcover VARCHAR(3),
  price DECIMAL(10,2)
);
CREATE TABLE parent (a INTEGER, b TEXT, name TEXT COLLATE NOCASE, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE UNIQUE INDEX parent_name ON parent (name);
CREATE TABLE child (
  id INTEGER PRIMARY KEY,
  pa INTEGER,
  pb TEXT,
  qty INTEGER CHECK (qty >= 0),
  status TEXT DEFAULT 'new',
  created TEXT DEFAULT CURRENT_TIMESTAMP,
  FOREIGN KEY (pa, pb) REFERENCES parent (a, b) ON DELETE CASCADE ON UPDATE SET NULL
);
CREATE UNIQUE INDEX child_active ON child (pa) WHERE status = 'active';
CREATE INDEX child_lower ON child (lower(status));
CREATE TABLE uq (x INTEGER UNIQUE, y TEXT);
CREATE UNIQUE INDEX uq_x_again ON uq (x);
CREATE VIEW child_names AS SELECT c.id, p.name FROM child c JOIN parent p ON p.a = c.pa AND p.b = c.pb;
CREATE VIEW glob_view AS SELECT id FROM child WHERE status GLOB 'a*';
`;

export function fillKitchenSink(db: Database.Database): void {
  const mixed = db.prepare('insert into "Mixed Case" ("select", "Weird Name", camelCase) values (?, ?, ?)');
  mixed.run("from", "x y", 1);
  mixed.run(null, "ünïcödé ✓", 2);
  db.prepare(`delete from "Mixed Case" where id = 2`).run();
  mixed.run("where", "z", 3);
  const dyn = db.prepare(
    `insert into dyn (id, big, small, r, mixed, txt, numtxt, flag, notflag, ms, secs, iso, isoz, d, doc, notjson, b, vc, vcover, price)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  dyn.safeIntegers(true);
  dyn.run(
    1n,
    9007199254740993n,
    1n,
    0.1,
    1n,
    "1.50",
    5n,
    1n,
    2n,
    1700000000123n,
    1700000000n,
    "2024-01-02 03:04:05",
    "2024-01-02T03:04:05Z",
    "2024-02-29",
    '{"a":[1,2],"b":{"c":null}}',
    "{oops",
    Buffer.from([0, 1, 254, 255]),
    "abc",
    "abcdef",
    12.34,
  );
  dyn.run(
    2n,
    -9223372036854775808n,
    -7n,
    -2.5e300,
    "text",
    "line1\nline2\ttab\\back",
    "abc",
    0n,
    0n,
    0n,
    0n,
    "2024-12-31 23:59:59.999",
    "2024-06-01 10:00:00+02:00",
    "1999-01-01",
    "[]",
    "plain",
    Buffer.alloc(0),
    "0123456789",
    "x",
    5n,
  );
  dyn.run(
    3n,
    9223372036854775807n,
    0n,
    null,
    2.5,
    "",
    null,
    1n,
    1n,
    null,
    null,
    null,
    "2024-06-01 10:00:00",
    null,
    null,
    null,
    null,
    null,
    null,
    null,
  );
  const parent = db.prepare("insert into parent values (?, ?, ?)");
  parent.run(1, "x", "Alpha");
  parent.run(2, "y", "beta");
  const child = db.prepare("insert into child (id, pa, pb, qty, status, created) values (?, ?, ?, ?, ?, ?)");
  child.run(1, 1, "x", 3, "active", "2024-01-01 00:00:00");
  child.run(2, 2, "y", 0, "done", "2024-01-01 00:00:00");
  child.run(3, null, null, null, "new", "2024-01-01 00:00:00");
  db.prepare("insert into uq values (?, ?)").run(1, "one");
  db.prepare("insert into uq values (?, ?)").run(null, "null");
}
