export * from "./advisory-lock.ts";
export * from "./check-target.ts";
export * from "./copy-writer.ts";
export * from "./errors.ts";
export * from "./internal-schema.ts";
export * from "./pool.ts";
export * from "./quote.ts";
export * from "./retry.ts";
