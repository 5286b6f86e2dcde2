import { ConnectionError } from "../pg/errors.ts";

/** A table result of a verification, as far as the import reads it. */
interface VerifiedTable {
  table?: string;
  status?: string;
  error?: { code?: string; message?: string };
}

const CONNECTION_CODES = new Set(["connection_lost", "connection_failed", "circuit_open"]);

/**
 * The connection failure that stopped a verification, if one did: a table that could not be compared
 * because the server went away is not a difference between source and target. The import then ends
 * as a connection failure (exit 1, resume to verify), not as a mismatch (exit 3).
 */
export function verificationConnectionError(verification: {
  identical: boolean;
  [key: string]: unknown;
}): ConnectionError | undefined {
  if (verification.identical) return undefined;
  const tables = Array.isArray(verification.tables) ? (verification.tables as VerifiedTable[]) : [];
  const cut = tables.find((t) => t.status === "error" && CONNECTION_CODES.has(t.error?.code ?? ""));
  if (!cut?.error) return undefined;
  const code = cut.error.code as "connection_lost" | "connection_failed" | "circuit_open";
  return new ConnectionError(
    `${cut.error.message ?? code} (while verifying ${cut.table ?? "a table"}; the data is loaded, verification did not finish)`,
    undefined,
    { table: cut.table },
    code,
  );
}
