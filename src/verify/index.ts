/** Verification: independent per-row checksums on source and target, chunked by key, localized diffs, signed reports. */
export * from "./canonical.ts";
export * from "./canonical-json.ts";
export * from "./canonical-number.ts";
export * from "./canonical-time.ts";
export * from "./chunking.ts";
export * from "./document-verify.ts";
export * from "./plan-tables.ts";
export * from "./report.ts";
export * from "./source-reader.ts";
export * from "./source-sums.ts";
export * from "./sqlite-source.ts";
export * from "./stored-run.ts";
export * from "./target-side.ts";
export * from "./types.ts";
export * from "./verify-import.ts";
export * from "./verify-result.ts";
export * from "./verify-tables.ts";
