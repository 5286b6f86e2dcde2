export * from "./status-server.ts";
