import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "./sqlite-fixtures.ts";

const db = useTestDatabase("views");
const dir = fixtureDir();

/**
 * A Chinook/Northwind-style sample: 20 views in SQLite's idioms, and 3 that have no faithful
 * PostgreSQL form (GLOB, typeof, and || mixed with arithmetic, which the two dialects group differently).
 */
const SAMPLE = `
CREATE TABLE artists (ArtistId INTEGER PRIMARY KEY, Name NVARCHAR(120));
CREATE TABLE albums (AlbumId INTEGER PRIMARY KEY, Title NVARCHAR(160) NOT NULL, ArtistId INTEGER NOT NULL REFERENCES artists(ArtistId));
CREATE TABLE tracks (TrackId INTEGER PRIMARY KEY, Name NVARCHAR(200) NOT NULL, AlbumId INTEGER REFERENCES albums(AlbumId),
  Composer NVARCHAR(220), Milliseconds INTEGER NOT NULL, UnitPrice NUMERIC(10,2) NOT NULL);
CREATE TABLE customers (CustomerId INTEGER PRIMARY KEY, FirstName NVARCHAR(40) NOT NULL, LastName NVARCHAR(20) NOT NULL,
  Company NVARCHAR(80), Country NVARCHAR(40), PostalCode NVARCHAR(10), SupportRepId INTEGER);
CREATE TABLE invoices (InvoiceId INTEGER PRIMARY KEY, CustomerId INTEGER NOT NULL REFERENCES customers(CustomerId),
  InvoiceDate DATETIME NOT NULL, BillingCountry NVARCHAR(40), Total NUMERIC(10,2) NOT NULL);
CREATE TABLE products (ProductID INTEGER PRIMARY KEY, ProductName TEXT NOT NULL, UnitPrice REAL, UnitsInStock INTEGER,
  Discontinued TEXT NOT NULL DEFAULT '0');
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, updated_at DATETIME, qty INTEGER);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER, action TEXT, at TEXT);

CREATE VIEW artist_albums AS SELECT ar.Name AS artist, group_concat(al.Title, '; ' ORDER BY al.Title) AS albums, count(*) AS n
  FROM artists ar JOIN albums al ON al.ArtistId = ar.ArtistId GROUP BY ar.ArtistId, ar.Name;
CREATE VIEW album_track_ids AS SELECT AlbumId, group_concat(TrackId) AS track_ids
  FROM (SELECT AlbumId, TrackId FROM tracks ORDER BY TrackId) GROUP BY AlbumId;
CREATE VIEW customer_names AS SELECT CustomerId, FirstName || ' ' || LastName AS full_name, ifnull(Company, 'n/a') AS company,
  upper(substr(LastName, 1, 3)) AS code, length(LastName) AS len, instr(LastName, 'a') AS pos_a, length(SupportRepId) AS rep_len
  FROM customers;
CREATE VIEW invoice_months AS SELECT strftime('%Y-%m', InvoiceDate) AS month, count(*) AS invoices, sum(Total) AS total
  FROM invoices GROUP BY strftime('%Y-%m', InvoiceDate);
CREATE VIEW invoice_dates AS SELECT InvoiceId, InvoiceDate, date(InvoiceDate) AS day, datetime(InvoiceDate, '+1 day') AS next_day,
  date(InvoiceDate, 'start of month') AS month_start, strftime('%d/%m/%Y %H:%M:%S', InvoiceDate) AS eu,
  strftime('%s', InvoiceDate) AS epoch, julianday(InvoiceDate) AS jd FROM invoices;
CREATE VIEW invoices_2021 AS SELECT InvoiceId, Total FROM invoices WHERE strftime('%Y', InvoiceDate) = '2021';
CREATE VIEW invoices_until AS SELECT InvoiceId FROM invoices WHERE InvoiceDate <= '2021-01-02' OR InvoiceDate >= '2022-12';
CREATE VIEW literal_dates AS SELECT date('2024-03-15') AS d, datetime('2024-03-15 10:20:30', '+2 hours') AS dt,
  strftime('%Y', '2024-03-15') AS y, date('2024-03-15', 'start of year') AS ys, time('2024-03-15 10:20:30') AS t,
  date('now') = date(CURRENT_TIMESTAMP) AS today;
CREATE VIEW track_labels AS SELECT TrackId, 'Track ' || TrackId || ' (' || (Milliseconds / 1000) || ' s)' AS label,
  Name || ' - $' || UnitPrice AS priced FROM tracks;
CREATE VIEW tracks_after_two AS SELECT TrackId, Name FROM tracks ORDER BY TrackId LIMIT -1 OFFSET 2;
CREATE VIEW current_products AS SELECT ProductID, ProductName FROM products WHERE Discontinued = 0;
CREATE VIEW discontinued_products AS SELECT count(*) AS n FROM products WHERE (((products.Discontinued)=1)) OR Discontinued > 5;
CREATE VIEW products_above_average AS SELECT ProductName, UnitPrice FROM products
  WHERE UnitPrice > (SELECT avg(UnitPrice) FROM products);
CREATE VIEW country_stats AS SELECT BillingCountry, count(*) AS n, round(avg(Total), 2) AS avg_total, total(Total) AS sum_total,
  avg(CustomerId) AS avg_customer FROM invoices GROUP BY BillingCountry;
CREATE VIEW track_lengths AS SELECT Name, CAST(Milliseconds / 60000.0 AS INTEGER) AS minutes,
  iif(Milliseconds > 300000, 'long', 'short') AS kind, max(Milliseconds, 250000) AS at_least, CAST(Milliseconds AS REAL) / 1000 AS secs
  FROM tracks;
CREATE VIEW customer_spending AS SELECT c.full_name, count(i.InvoiceId) AS invoices, coalesce(sum(i.Total), 0) AS spent
  FROM customer_names c LEFT JOIN invoices i ON i.CustomerId = c.CustomerId GROUP BY c.full_name;
CREATE VIEW postal_codes_above AS SELECT CustomerId, PostalCode FROM customers WHERE PostalCode > 50000 AND SupportRepId = '3';
CREATE VIEW postal_next AS SELECT CustomerId, PostalCode + 1 AS next_code FROM customers WHERE CustomerId IN (1, 2);
CREATE VIEW artists_nocase AS SELECT Name FROM artists WHERE Name = 'ac/dc' COLLATE NOCASE OR Name COLLATE BINARY = 'Accept';
CREATE VIEW glob_tracks AS SELECT Name FROM tracks WHERE Name GLOB 'A*';
CREATE VIEW total_types AS SELECT typeof(Total) AS t FROM invoices;
CREATE VIEW mixed_precedence AS SELECT 'Track ' || TrackId || ' (' || Milliseconds / 1000 || ' s)' AS label FROM tracks;

CREATE VIEW item_names AS SELECT id, name FROM items;
CREATE TRIGGER item_names_insert INSTEAD OF INSERT ON item_names BEGIN
  INSERT INTO items (id, name, qty) VALUES (NEW.id, upper(NEW.name), 0);
END;
CREATE TRIGGER items_touch AFTER UPDATE ON items FOR EACH ROW BEGIN
  UPDATE items SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;
CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN
  INSERT INTO audit(item_id, action, at) VALUES (NEW.id, 'insert ' || NEW.name, datetime('now'));
END;
CREATE TRIGGER items_qty AFTER UPDATE OF qty ON items WHEN NEW.qty <> OLD.qty BEGIN
  INSERT INTO audit(item_id, action) VALUES (NEW.id, 'qty ' || OLD.qty || '->' || NEW.qty);
END;
CREATE TRIGGER items_no_delete BEFORE DELETE ON items BEGIN SELECT RAISE(ABORT, 'no deletes'); END;
CREATE TRIGGER items_no_negative BEFORE UPDATE ON items BEGIN
  SELECT RAISE(ABORT, 'qty must not be negative') WHERE NEW.qty < 0;
END;
CREATE TRIGGER audit_deleted AFTER DELETE ON audit BEGIN
  INSERT OR IGNORE INTO audit(item_id, action) VALUES (OLD.item_id, 'deleted');
END;
`;

const TRANSLATED_VIEWS = [
  "artist_albums",
  "album_track_ids",
  "customer_names",
  "invoice_months",
  "invoice_dates",
  "invoices_2021",
  "invoices_until",
  "literal_dates",
  "track_labels",
  "tracks_after_two",
  "current_products",
  "discontinued_products",
  "products_above_average",
  "country_stats",
  "track_lengths",
  "customer_spending",
  "postal_codes_above",
  "postal_next",
  "artists_nocase",
  "item_names",
];

function fill(sqlite: Database.Database): void {
  sqlite.exec(`
    INSERT INTO artists VALUES (1, 'AC/DC'), (2, 'Accept'), (3, 'Aerosmith');
    INSERT INTO albums VALUES (1, 'For Those About To Rock', 1), (2, 'Let There Be Rock', 1), (3, 'Balls to the Wall', 2),
      (4, 'Restless and Wild', 2), (5, 'Big Ones', 3);
    INSERT INTO tracks VALUES (1, 'For Those About To Rock', 1, 'Angus Young', 343719, 0.99),
      (2, 'Balls to the Wall', 3, NULL, 342562, 0.99), (3, 'Fast As a Shark', 4, 'F. Baltes', 230619, 1.99),
      (4, 'Restless and Wild', 4, 'F. Baltes', 252051, 0.99), (5, 'Walk On Water', 5, 'Steven Tyler', 295680, 1.99),
      (6, 'Go Down', 2, 'AC/DC', 331180, 0.99), (7, 'Dog Eat Dog', 2, 'AC/DC', 215196, 0.99);
    INSERT INTO customers VALUES (1, 'Luís', 'Gonçalves', 'Embraer', 'Brazil', '12227', 3),
      (2, 'Leonie', 'Köhler', NULL, 'Germany', '70174', 5), (3, 'François', 'Tremblay', NULL, 'Canada', 'H2G 1A7', 3),
      (4, 'Bjørn', 'Hansen', NULL, 'Norway', '0171', 4), (5, 'Frank', 'Harris', 'Google Inc.', 'USA', '94043', 3);
    INSERT INTO invoices VALUES (1, 2, '2021-01-01 00:00:00', 'Germany', 1.98), (2, 4, '2021-01-02 00:00:00', 'Norway', 3.96),
      (3, 3, '2021-02-03 14:30:05', 'Canada', 5.94), (4, 5, '2022-03-04 09:15:00', 'USA', 8.91),
      (5, 2, '2022-03-31 23:59:59', 'Germany', 13.86), (6, 1, '2022-12-31 12:00:00', 'Brazil', 0.99);
    INSERT INTO products VALUES (1, 'Chai', 18.0, 39, '0'), (2, 'Chang', 19.0, 17, '0'), (3, 'Aniseed Syrup', 10.0, 13, '0'),
      (4, 'Chef Anton''s Gumbo Mix', 21.35, 0, '1'), (5, 'Mishi Kobe Niku', 97.0, 29, '1'), (6, 'Ikura', 31.0, 31, '0');
    INSERT INTO items (id, name, updated_at, qty) VALUES (1, 'bolt', '2024-01-01 00:00:00', 10), (2, 'nut', '2024-01-02 00:00:00', 20);
  `);
}

/** Values as both sides compare: numbers (pg sends numeric and bigint as text) and timestamps normalized. */
function normalize(value: unknown): unknown {
  if (value instanceof Date) {
    const p = (n: number) => String(n).padStart(2, "0");
    return `${value.getFullYear()}-${p(value.getMonth() + 1)}-${p(value.getDate())} ${p(value.getHours())}:${p(value.getMinutes())}:${p(value.getSeconds())}`;
  }
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "number") return Number(value.toPrecision(12));
  if (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value) && !/^0\d/.test(value))
    return Number(Number(value).toPrecision(12));
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

function rowsOf(rows: Record<string, unknown>[]): string[] {
  return rows.map((r) => JSON.stringify(Object.values(r).map(normalize))).sort();
}

let path: string;
before(() => {
  path = makeSqlite(join(dir, "sample.db"), SAMPLE, fill);
});

describe("views and triggers of a sample database", () => {
  it("the dry run translates and parse-checks what the import will, and lists what it cannot", async () => {
    const result = await importSqlite({ path, pool: db().pool, schema: "dry", dryRun: true });
    assert.equal(result.ok, true);
    const created = result.plan.views.filter((v) => v.sql).map((v) => v.sourceName);
    assert.deepEqual(
      created,
      TRANSLATED_VIEWS,
      JSON.stringify(result.notes.filter((n) => n.kind === "view")),
    );
    assert.deepEqual(
      result.untranslated.map((u) => [u.kind, u.name, u.reason]),
      [
        ["view", "glob_tracks", "GLOB has no exact PostgreSQL equivalent"],
        ["view", "total_types", "function typeof() has no PostgreSQL equivalent with the same meaning"],
        [
          "view",
          "mixed_precedence",
          "|| next to / without parentheses: SQLite binds || tighter than arithmetic, PostgreSQL looser, so the expression would mean something else (add parentheses in SQLite)",
        ],
        ["trigger", "audit_deleted", `not valid PostgreSQL syntax (syntax error at or near "OR")`],
      ],
    );
    assert.match(
      result.untranslated[0]!.sql,
      /^CREATE VIEW glob_tracks AS SELECT Name FROM tracks WHERE Name GLOB/,
    );
    assert.equal(result.sql.filter((s) => s.startsWith("create trigger")).length, 6);
    const schemas = await db().pool.query("select 1 from pg_namespace where nspname = 'dry'");
    assert.equal(schemas.rowCount, 0);
  });

  it("creates every view SQLite can run, with the rows SQLite returns", async () => {
    const result = await importSqlite({ path, pool: db().pool, schema: "app", verify: false });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.warnings));
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(
      result.untranslated.map((u) => u.name),
      ["glob_tracks", "total_types", "mixed_precedence", "audit_deleted"],
    );
    const sqlite = new Database(path, { readonly: true });
    try {
      for (const view of TRANSLATED_VIEWS) {
        const expected = rowsOf(sqlite.prepare(`select * from "${view}"`).all() as Record<string, unknown>[]);
        const actual = rowsOf((await db().pool.query(`select * from app."${view}"`)).rows);
        assert.ok(expected.length > 0, `${view} has rows in SQLite`);
        assert.deepEqual(actual, expected, `view ${view}`);
      }
    } finally {
      sqlite.close();
    }
    const views = await db().pool.query(
      "select viewname from pg_views where schemaname = 'app' order by viewname",
    );
    assert.deepEqual(
      views.rows.map((r) => r.viewname),
      [...TRANSLATED_VIEWS].sort(),
    );
  });

  it("triggers fire with SQLite's effect, and touching a row does not recurse", async () => {
    const sqlite = new Database(join(dir, "sample.db"));
    const pool = db().pool;
    const statements = [
      "UPDATE items SET qty = qty + 1 WHERE id = 1",
      "UPDATE items SET name = 'nut 2' WHERE id = 2",
      "INSERT INTO items (id, name, qty) VALUES (10, 'washer', 5)",
      "INSERT INTO item_names (id, name) VALUES (11, 'gear')",
    ];
    try {
      for (const sql of statements) {
        sqlite.exec(sql);
        await pool.query(`set search_path = app; ${sql}`);
      }
      const sqliteAudit = sqlite
        .prepare("select item_id, action, at is not null as has_at from audit order by id")
        .all();
      const pgAudit = (
        await pool.query("select item_id, action, at is not null as has_at from app.audit order by id")
      ).rows.map((r: { item_id: string; action: string; has_at: boolean }) => ({
        item_id: Number(r.item_id),
        action: r.action,
        has_at: r.has_at ? 1 : 0,
      }));
      assert.deepEqual(pgAudit, sqliteAudit);
      assert.deepEqual(
        pgAudit.map((r) => r.action),
        ["insert bolt", "insert nut", "qty 10->11", "insert washer", "insert GEAR"],
      );
      const sqliteAt = (sqlite.prepare("select at from audit where item_id = 10").get() as { at: string }).at;
      const pgAt = (await pool.query("select at from app.audit where item_id = 10")).rows[0].at as string;
      assert.match(pgAt, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      assert.ok(
        Math.abs(Date.parse(`${pgAt}Z`) - Date.parse(`${sqliteAt}Z`)) < 10 * 60_000,
        `${pgAt} vs ${sqliteAt}`,
      );
      // The touch trigger set updated_at to the UTC clock on both sides (once: PostgreSQL did not recurse).
      const sqliteTouched = sqlite.prepare("select id, updated_at from items order by id").all() as {
        id: number;
        updated_at: string | null;
      }[];
      const pgTouched = (
        await pool.query(
          "select id, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS') as updated_at from app.items order by id",
        )
      ).rows as { id: string; updated_at: string | null }[];
      assert.deepEqual(
        pgTouched.map((r) => Number(r.id)),
        sqliteTouched.map((r) => r.id),
      );
      for (let i = 0; i < pgTouched.length; i++) {
        const expected = sqliteTouched[i]!.updated_at;
        const actual = pgTouched[i]!.updated_at;
        if (expected === null) assert.equal(actual, null);
        else {
          assert.notEqual(expected.slice(0, 4), "2024");
          assert.ok(
            Math.abs(Date.parse(`${actual}Z`) - Date.parse(`${expected}Z`)) < 10 * 60_000,
            `${actual} vs ${expected}`,
          );
        }
      }
      const functions = await pool.query(
        `select p.proname, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'app' order by p.proname`,
      );
      assert.deepEqual(
        functions.rows.map((r) => [r.proname, r.proconfig]),
        [
          ["item_names_insert", ["search_path=app"]],
          ["items_audit", ["search_path=app"]],
          ["items_no_delete", ["search_path=app"]],
          ["items_no_negative", ["search_path=app"]],
          ["items_qty", ["search_path=app"]],
          ["items_touch", ["search_path=app"]],
        ],
      );
      // Validations raise on both sides, and nothing changes.
      for (const [sql, message] of [
        ["DELETE FROM items WHERE id = 1", "no deletes"],
        ["UPDATE items SET qty = -1 WHERE id = 2", "qty must not be negative"],
      ] as const) {
        assert.throws(() => sqlite.exec(sql), new RegExp(message));
        await assert.rejects(pool.query(`set search_path = app; ${sql}`), new RegExp(message));
      }
      const counts = await pool.query("select count(*)::int as n, min(qty)::int as low from app.items");
      assert.deepEqual(counts.rows[0], { n: 4, low: 0 });
    } finally {
      sqlite.close();
    }
  });

  it("a replace re-creates pgshift's trigger functions, and never replaces a user's function", async () => {
    const pool = db().pool;
    const again = await importSqlite({ path, pool, schema: "app", verify: false, ifExists: "replace" });
    assert.equal(again.ok, true, JSON.stringify(again.error ?? again.warnings));
    const triggers = await pool.query(
      "select tgname from pg_trigger where tgrelid = 'app.items'::regclass and not tgisinternal order by 1",
    );
    assert.deepEqual(
      triggers.rows.map((r) => r.tgname),
      ["items_audit", "items_no_delete", "items_no_negative", "items_qty", "items_touch"],
    );
    await pool.query(
      "create schema mine; create function mine.items_touch() returns int language sql as 'select 1'",
    );
    const result = await importSqlite({ path, pool, schema: "mine", verify: false });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    const rejected = result.untranslated.find((u) => u.name === "items_touch");
    assert.match(
      rejected?.reason ?? "",
      /^PostgreSQL rejected the translation: a function mine\.items_touch\(\) that pgshift did not create already exists/,
    );
    assert.match(rejected?.sql ?? "", /^CREATE TRIGGER items_touch AFTER UPDATE ON items/);
    const mine = await pool.query("select mine.items_touch() as v");
    assert.equal(mine.rows[0].v, 1);
  });
});
