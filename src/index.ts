/**
 * pgshift's library entry point. Every capability is a function that takes validated options and
 * returns a result object; nothing here prints, reads argv or exits.
 */
export * from "./config/index.ts";
export * from "./errors.ts";
export * from "./local/index.ts";
export * from "./migrate/index.ts";
export * from "./pg/index.ts";
export * from "./progress.ts";
export * from "./cutover/index.ts";
export * from "./serve/index.ts";
export * from "./documents/index.ts";
export * from "./load/index.ts";
export * from "./verify/index.ts";
