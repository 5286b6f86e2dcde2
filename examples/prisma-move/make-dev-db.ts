/**
 * Writes dev.db as Prisma's SQLite connector stores this schema: DateTime as milliseconds since the
 * epoch, Boolean as 0/1, Json and enums as text, Decimal as DECIMAL, plus its _prisma_migrations.
 *
 *   node bin/run-ts.js examples/prisma-move/make-dev-db.ts [PATH] [USERS]
 * Deterministic: the same rows every time.
 */
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";

const SCHEMA = `
CREATE TABLE "User" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" TEXT NOT NULL DEFAULT 'USER',
    "verified" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "settings" JSONB
);
CREATE TABLE "Post" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "title" TEXT NOT NULL,
    "body" TEXT,
    "published" BOOLEAN NOT NULL DEFAULT false,
    "price" DECIMAL,
    "authorId" INTEGER NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE TABLE "_prisma_migrations" (
    "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME, "migration_name" TEXT NOT NULL,
    "logs" TEXT, "rolled_back_at" DATETIME, "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE INDEX "Post_authorId_idx" ON "Post"("authorId");
`;

const BASE_MS = 1_717_200_000_000; // 2024-06-01 00:00:00 UTC

export function makeDevDb(path: string, users = 2000, postsPerUser = 5): string {
  rmSync(path, { force: true });
  const db = new Database(path);
  db.exec(SCHEMA);
  db.transaction(() => {
    const user = db.prepare('insert into "User" values (?, ?, ?, ?, ?, ?, ?)');
    const post = db.prepare('insert into "Post" values (?, ?, ?, ?, ?, ?, ?, ?)');
    let postId = 0;
    for (let u = 1; u <= users; u++) {
      user.run(
        u,
        `user${u}@example.com`,
        u % 10 ? `User ${u}` : null,
        u % 50 ? "USER" : "ADMIN",
        u % 3 ? 1 : 0,
        BASE_MS + u * 37_123,
        u % 4
          ? JSON.stringify({ theme: u % 2 ? "dark" : "light", langs: ["en", u % 5 ? "de" : "fr"] })
          : null,
      );
      for (let p = 0; p < postsPerUser; p++) {
        postId++;
        post.run(
          postId,
          `Post ${postId} by ${u}`,
          postId % 7 ? `Body of post ${postId}\nwith a second line` : null,
          postId % 2,
          postId % 3 ? ((postId * 7) % 10000) / 100 : null,
          u,
          BASE_MS + postId * 11_001,
          BASE_MS + postId * 11_001 + (postId % 1000),
        );
      }
    }
    db.prepare(
      "insert into _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) values (?, ?, ?, ?, 1)",
    ).run("3b1c6f3e-6d0e-4c2a-9a51-1f0b7b9c0001", "e3b0c442", BASE_MS, "20240601000000_init");
  })();
  db.close();
  return path;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = process.argv[2] ?? fileURLToPath(new URL("./dev.db", import.meta.url));
  makeDevDb(path, process.argv[3] ? Number(process.argv[3]) : undefined);
  process.stdout.write(`wrote ${path}\n`);
}
