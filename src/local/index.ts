export * from "./binaries.ts";
export * from "./instance.ts";
export { chooseRunAs, type RunAs } from "./run-as.ts";
export * from "./target.ts";
