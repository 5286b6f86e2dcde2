export * from "./redact.ts";
export * from "./settings.ts";
export * from "./reserved-schema.ts";
