import type { Settings } from "../config/settings.ts";
import { ensureLocalInstance, type LocalInstanceStatus } from "./instance.ts";

export interface ResolvedTarget {
  /** Full URL, password included: pass to createPool, never print. */
  url: string;
  /** Set when no target was configured and the managed local instance is used. */
  managed?: LocalInstanceStatus & { started: boolean };
}

/**
 * The database a command works on: the configured URL, else the managed local instance
 * (`settings.localName`, default "default"), started on demand. `onNotice` hears the one line
 * that tells the user which one was chosen.
 */
export async function resolveTarget(
  settings: Pick<Settings, "to" | "localName" | "localDir">,
  onNotice?: (message: string) => void,
): Promise<ResolvedTarget> {
  if (settings.to) return { url: settings.to };
  const { url, start } = await ensureLocalInstance({ name: settings.localName, baseDir: settings.localDir });
  const status = start.status;
  onNotice?.(
    `no target given: using managed local PostgreSQL "${status.name}" (${status.version}, 127.0.0.1:${status.port}${start.alreadyRunning ? "" : ", started now"}); pass --to or set DATABASE_URL for another server`,
  );
  return { url, managed: { ...status, started: !start.alreadyRunning } };
}
