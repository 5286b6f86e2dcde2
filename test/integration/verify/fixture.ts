import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";

/**
 * A small SQLite database with every kind of value verification must handle: integer keys, text
 * with awkward characters, numerics, reals, blobs, 0/1 booleans, ISO date-times with microseconds,
 * millisecond epochs, nested JSON; a WITHOUT ROWID table with a composite key; a table with no key
 * and duplicate rows.
 */
export interface Fixture {
  dir: string;
  path: string;
  cleanup(): void;
}

export function makeFixture(options: { items?: number; name?: string; relations?: boolean } = {}): Fixture {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-verify-"));
  const path = join(dir, options.name ?? "app.db");
  const db = new Database(path);
  const items = options.items ?? 3000;
  db.exec(`
    create table items (
      id integer primary key,
      name text not null,
      price numeric,
      score real,
      data blob,
      active boolean,
      created_at datetime,
      updated_ms timestamp,
      doc json
    );
    create table pairs (a text not null, b integer not null, v text, primary key (a, b)) without rowid;
    create table loose (x integer, y text);
  `);
  if (options.relations) {
    // Something for every post-data phase: keys, indexes, foreign keys, checks, identity, a view.
    db.exec(`
      create index items_name on items (name);
      create unique index items_created on items (created_at, id);
      create table orders (
        id integer primary key autoincrement,
        item_id integer not null references items (id) on delete cascade,
        qty integer not null check (qty > 0),
        note text
      );
      create index orders_item on orders (item_id);
      create view big_orders as select id, item_id, qty from orders where qty > 5;
    `);
  }
  const insert = db.prepare(
    "insert into items (id, name, price, score, data, active, created_at, updated_ms, doc) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const names = [
    "plain",
    "with space",
    'quote"s',
    "back\\slash",
    "tab\there",
    "new\nline",
    "Ünïcode ∑ 😀",
    "",
    "(paren),",
  ];
  db.transaction(() => {
    for (let i = 1; i <= items; i++) {
      const micros = String((i * 7919) % 1_000_000).padStart(6, "0");
      insert.run(
        i,
        `${names[i % names.length]} #${i}`,
        i % 11 === 0 ? null : (i * 37) / 4,
        i % 13 === 0 ? null : i / 3 + 1e-9 * i,
        i % 5 === 0 ? null : Buffer.from([i & 255, (i >> 8) & 255, 0, 255, 16]),
        i % 2,
        `2024-0${1 + (i % 9)}-1${i % 10}T0${i % 10}:1${i % 6}:2${i % 10}.${micros}`,
        BigInt(1_700_000_000_000 + i * 1_234_567),
        JSON.stringify({
          n: i,
          tags: ["a", `t${i % 7}`],
          nested: { deep: { v: i / 8, s: `x${i}` } },
          z: i % 3 === 0,
        }),
      );
    }
    const pair = db.prepare("insert into pairs values (?, ?, ?)");
    for (let i = 0; i < 200; i++) pair.run(`k${i % 20}`, i, i % 9 === 0 ? null : `v${i}`);
    const loose = db.prepare("insert into loose values (?, ?)");
    for (let i = 0; i < 100; i++) loose.run(i % 30, `y${i % 30}`);
    if (options.relations) {
      const order = db.prepare("insert into orders (item_id, qty, note) values (?, ?, ?)");
      for (let i = 0; i < items; i++)
        order.run((i % items) + 1, (i % 9) + 1, i % 4 === 0 ? null : `note ${i}`);
    }
  })();
  db.close();
  return { dir, path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
