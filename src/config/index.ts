export * from "./redact.ts";
export * from "./settings.ts";
