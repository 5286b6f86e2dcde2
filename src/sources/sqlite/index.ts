/** Reading SQLite databases: catalog, value scan, row streaming. */
export * from "./sqlite-catalog.ts";
export * from "./sqlite-rows.ts";
export * from "./sqlite-scan.ts";
export * from "./sqlite-tokens.ts";
