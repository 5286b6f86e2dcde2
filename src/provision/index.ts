export * from "./apply-settings.ts";
export * from "./tune.ts";
