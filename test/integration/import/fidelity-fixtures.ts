import { join } from "node:path";
import { makeSqlite } from "./sqlite-fixtures.ts";

// The schema-fidelity fixtures (issue 12), in the shapes real databases have: Django's DDL, Chinook's
// and Sakila's named constraints, a blob/number column, COLLATE NOCASE. docs/fidelity.md's pgshift vs
// pgloader table was measured on these files.

/** Django 4's own DDL for two models with a ForeignKey, a BigIntegerField and a DecimalField. */
export const DJANGO = `
CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "username" varchar(150) NOT NULL UNIQUE,
  "visits" bigint NOT NULL, "score" integer NOT NULL, "code" INT8);
CREATE TABLE "shop_order" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  "user_id" integer NOT NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED,
  "reviewer_id" integer NULL REFERENCES "auth_user" ("id") DEFERRABLE,
  "price" decimal(10, 2) NOT NULL, "ratio" NUMERIC(4,2), "isbn" varchar(13) NOT NULL DEFAULT "",
  "kind" text DEFAULT "isbn", "legacy" integer NOT NULL DEFAULT 'none', "note" text DEFAULT 'none');
CREATE INDEX "shop_order_user_id_1b2c3d4e" ON "shop_order" ("user_id");
`;

/** Chinook's and Sakila's naming: PK_x, IFK_x, fk_x, CONSTRAINT c_to_p, and one name used twice. */
export const NAMED = `
CREATE TABLE [Artist] ([ArtistId] INTEGER NOT NULL, [Name] NVARCHAR(120), CONSTRAINT [PK_Artist] PRIMARY KEY ([ArtistId]));
CREATE TABLE [Album] ([AlbumId] INTEGER NOT NULL, [Title] NVARCHAR(160) NOT NULL, [ArtistId] INTEGER NOT NULL,
  CONSTRAINT [PK_Album] PRIMARY KEY ([AlbumId]),
  FOREIGN KEY ([ArtistId]) REFERENCES [Artist] ([ArtistId]) ON DELETE NO ACTION ON UPDATE NO ACTION);
CREATE INDEX [IFK_AlbumArtistId] ON [Album] ([ArtistId]);
CREATE TABLE city (city_id INTEGER NOT NULL, city TEXT NOT NULL, CONSTRAINT pk PRIMARY KEY (city_id));
CREATE TABLE address (address_id INTEGER NOT NULL, city_id INTEGER NOT NULL, phone TEXT,
  CONSTRAINT pk PRIMARY KEY (address_id), CONSTRAINT uq_phone UNIQUE (phone),
  CONSTRAINT fk_address_city FOREIGN KEY (city_id) REFERENCES city (city_id) ON DELETE RESTRICT ON UPDATE CASCADE);
CREATE TABLE p (id INTEGER PRIMARY KEY);
CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER, CONSTRAINT c_to_p FOREIGN KEY (p_id) REFERENCES p (id));
`;

export const MIXED_BLOBS = `
CREATE TABLE media (id INTEGER PRIMARY KEY, data BLOB, raw, empty BLOB, untyped);
`;

export const NOCASE_LIKE = `
CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT COLLATE NOCASE NOT NULL, isbn TEXT);
`;

export interface FidelityFixtures {
  django: string;
  named: string;
  blobs: string;
  nocase: string;
}

/** Builds the four SQLite files in `dir`. */
export function makeFidelityFixtures(dir: string): FidelityFixtures {
  const django = makeSqlite(join(dir, "django.db"), DJANGO, (d) => {
    d.prepare("insert into auth_user values (1, 'ann', 3, 7, 5), (2, 'bob', 12, -4, null)").run();
    d.prepare(
      `insert into shop_order (id, user_id, reviewer_id, price, ratio, isbn, kind, legacy) values
         (1, 1, 2, 12.5, 1.5, '978', 'x', 0), (2, 2, null, 1234.56, 1.234, '', 'y', 1), (3, 1, 1, 7, null, 'a', null, 2)`,
    ).run();
  });
  const named = makeSqlite(join(dir, "named.db"), NAMED, (d) => {
    d.prepare("insert into Artist values (1, 'AC/DC'), (2, 'Accept')").run();
    d.prepare(
      "insert into Album values (1, 'For Those About To Rock', 1), (2, 'Balls to the Wall', 2)",
    ).run();
    d.prepare("insert into city values (1, 'Lethbridge'), (2, 'Woodridge')").run();
    d.prepare("insert into address values (1, 1, '555-1'), (2, 2, null)").run();
    d.prepare("insert into p values (1)").run();
    d.prepare("insert into c values (1, 1), (2, null)").run();
  });
  const blobs = makeSqlite(join(dir, "blobs.db"), MIXED_BLOBS, (d) => {
    const insert = d.prepare("insert into media values (?, ?, ?, ?, ?)");
    insert.safeIntegers(true);
    insert.run(1n, Buffer.from([0, 255, 16]), Buffer.from("ab"), null, null);
    insert.run(2n, 42n, 7n, null, null);
    insert.run(3n, 1.5, 0.1 + 0.2, null, null);
    insert.run(4n, 9007199254740993n, -3n, null, null);
    insert.run(5n, null, 1e21, null, null);
  });
  const nocase = makeSqlite(join(dir, "nocase.db"), NOCASE_LIKE, (d) => {
    d.prepare("insert into books values (1, 'Dune', '1'), (2, 'dune messiah', '2')").run();
  });
  return { django, named, blobs, nocase };
}
