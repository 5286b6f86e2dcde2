export * from "./retention.ts";
export * from "./backup-error.ts";
export * from "./logical-backup.ts";
export * from "./logical-restore.ts";
export * from "./manifest.ts";
export * from "./passphrase.ts";
