/** Reading SQLite databases: catalog, value scan, row streaming. */
export * from "./open-database.ts";
export * from "./sqlite-catalog.ts";
export * from "./sqlite-rows.ts";
export * from "./sqlite-scan.ts";
export * from "./sqlite-tokens.ts";
