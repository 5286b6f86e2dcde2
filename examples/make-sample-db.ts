/**
 * Generates examples/sample.db: a small SQLite database shaped like an ORM-backed app (users,
 * projects, tasks, orders), with the things that make SQLite imports hard: millisecond-epoch
 * timestamps, a JSON column, blobs, booleans stored as 0/1, a NOCASE email, foreign keys with
 * ON DELETE CASCADE, a partial and an expression index, a view, a WITHOUT ROWID table with a
 * composite key, an awkward table name ("Order Items") and a reserved-word column ("order").
 *
 *   node bin/run-ts.js examples/make-sample-db.ts [PATH]
 * Deterministic: the same file every time (seeded generator, fixed base time).
 */
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";

const SCHEMA = `
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL COLLATE NOCASE UNIQUE,
  displayName VARCHAR(80) NOT NULL,
  isAdmin BOOLEAN NOT NULL DEFAULT 0,
  settings JSON,
  avatar BLOB,
  createdAt DATETIME NOT NULL
);
CREATE TABLE projects (
  id INTEGER PRIMARY KEY,
  ownerId INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name VARCHAR(120) NOT NULL,
  archived BOOLEAN NOT NULL DEFAULT 0,
  budget NUMERIC(12, 2),
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE (ownerId, name)
);
CREATE TABLE tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  projectId INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE ON UPDATE CASCADE,
  assigneeId INTEGER REFERENCES users(id) ON DELETE SET NULL,
  title TEXT NOT NULL CHECK (length(title) > 0),
  done BOOLEAN NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL DEFAULT 2 CHECK (priority BETWEEN 1 AND 5),
  estimateHours REAL,
  dueDate DATE,
  createdAt DATETIME NOT NULL,
  updatedAt DATETIME NOT NULL
);
CREATE INDEX tasks_open_by_project ON tasks (projectId) WHERE done = 0;
CREATE INDEX tasks_title_lower ON tasks (lower(title));
CREATE INDEX tasks_assignee ON tasks (assigneeId);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  userId INTEGER REFERENCES users(id) ON DELETE SET NULL,
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'shipped', 'cancelled')),
  total NUMERIC NOT NULL DEFAULT 0,
  placedAt TEXT NOT NULL
);
CREATE TABLE "Order Items" (
  orderId INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  line INTEGER NOT NULL,
  "order" INTEGER NOT NULL DEFAULT 0,
  sku TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  unitPrice REAL NOT NULL,
  PRIMARY KEY (orderId, line)
) WITHOUT ROWID;
CREATE INDEX order_items_sku ON "Order Items" (sku);
CREATE VIEW open_tasks AS
  SELECT t.id, t.title, p.name AS project, u.email AS assignee
    FROM tasks t JOIN projects p ON p.id = t.projectId LEFT JOIN users u ON u.id = t.assigneeId
   WHERE t.done = 0;
`;

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SampleSize {
  users: number;
  projectsPerUser: number;
  tasksPerProject: number;
  orders: number;
}

export const SAMPLE_SIZE: SampleSize = {
  users: 120,
  projectsPerUser: 3,
  tasksPerProject: 8,
  orders: 400,
};

export function makeSampleDb(path: string, size: SampleSize = SAMPLE_SIZE): void {
  rmSync(path, { force: true });
  const db = new Database(path);
  db.pragma("journal_mode = delete");
  db.exec(SCHEMA);
  const rnd = random(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const base = Date.UTC(2024, 0, 1);
  const words = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "launch",
    "review",
    "fix",
    "design",
    "ship",
    "test",
    "Ünïcode",
    "naïve café",
  ];
  const insertUser = db.prepare(
    "insert into users (email, displayName, isAdmin, settings, avatar, createdAt) values (?, ?, ?, ?, ?, ?)",
  );
  const insertProject = db.prepare(
    "insert into projects (ownerId, name, archived, budget, createdAt) values (?, ?, ?, ?, ?)",
  );
  const insertTask = db.prepare(
    `insert into tasks (projectId, assigneeId, title, done, priority, estimateHours, dueDate, createdAt, updatedAt)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertOrder = db.prepare("insert into orders (userId, status, total, placedAt) values (?, ?, ?, ?)");
  const insertItem = db.prepare(
    `insert into "Order Items" (orderId, line, "order", sku, quantity, unitPrice) values (?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (let u = 1; u <= size.users; u++) {
      const created = base + Math.floor(rnd() * 86_400_000 * 300);
      const settings =
        u % 5 === 0
          ? null
          : JSON.stringify({
              theme: pick(["dark", "light"]),
              notify: rnd() > 0.5,
              tags: [pick(words)],
            });
      const avatar =
        u % 4 === 0 ? Buffer.from(Array.from({ length: 16 }, () => Math.floor(rnd() * 256))) : null;
      insertUser.run(
        `User${u}@Example.com`,
        `${pick(words)} ${u}`,
        u % 17 === 0 ? 1 : 0,
        settings,
        avatar,
        created,
      );
      for (let p = 0; p < size.projectsPerUser; p++) {
        const projectCreated = new Date(created + Math.floor(rnd() * 86_400_000 * 30))
          .toISOString()
          .replace("T", " ")
          .slice(0, 19);
        const budget = p % 2 === 0 ? Math.round(rnd() * 1_000_000) / 100 : null;
        const project = insertProject.run(
          u,
          `${pick(words)} project ${p}`,
          p === 2 ? 1 : 0,
          budget,
          projectCreated,
        );
        for (let t = 0; t < size.tasksPerProject; t++) {
          const taskCreated = created + Math.floor(rnd() * 86_400_000 * 60);
          const due = rnd() > 0.4 ? new Date(taskCreated + 86_400_000 * 14).toISOString().slice(0, 10) : null;
          const estimate = rnd() > 0.3 ? Math.round(rnd() * 400) / 10 : null;
          insertTask.run(
            project.lastInsertRowid,
            rnd() > 0.2 ? 1 + Math.floor(rnd() * u) : null,
            `${pick(words)} ${pick(words)}\t#${t}`,
            rnd() > 0.6 ? 1 : 0,
            1 + Math.floor(rnd() * 5),
            estimate,
            due,
            taskCreated,
            taskCreated + Math.floor(rnd() * 86_400_000),
          );
        }
      }
    }
    for (let o = 1; o <= size.orders; o++) {
      const lines = 1 + Math.floor(rnd() * 4);
      let total = 0;
      const order = insertOrder.run(
        rnd() > 0.1 ? 1 + Math.floor(rnd() * size.users) : null,
        pick(["open", "paid", "shipped", "cancelled"]),
        0,
        new Date(base + Math.floor(rnd() * 86_400_000 * 365)).toISOString(),
      );
      for (let l = 1; l <= lines; l++) {
        const quantity = 1 + Math.floor(rnd() * 5);
        const price = Math.round(rnd() * 10_000) / 100;
        total += quantity * price;
        insertItem.run(order.lastInsertRowid, l, l - 1, `SKU-${Math.floor(rnd() * 500)}`, quantity, price);
      }
      db.prepare("update orders set total = ? where id = ?").run(
        Math.round(total * 100) / 100,
        order.lastInsertRowid,
      );
    }
    // A deleted user: AUTOINCREMENT keeps its id reserved, the import must too.
    insertUser.run("deleted@example.com", "gone", 0, null, null, base);
    db.prepare("delete from users where email = 'deleted@example.com'").run();
  })();
  db.exec("vacuum");
  db.close();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2] ?? fileURLToPath(new URL("./sample.db", import.meta.url));
  makeSampleDb(target);
  process.stdout.write(`wrote ${target}\n`);
}
