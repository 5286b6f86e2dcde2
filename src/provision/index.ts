export * from "./apply-settings.ts";
export * from "./passwords.ts";
export * from "./pgbouncer-config.ts";
export * from "./pgbouncer-files.ts";
export * from "./rls.ts";
export * from "./roles.ts";
export * from "./tune.ts";
