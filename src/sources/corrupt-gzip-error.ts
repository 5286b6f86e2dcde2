import { PgshiftError } from "../errors.ts";

/**
 * A .gz source cannot be inflated: names the file and the compressed bytes where inflating stopped
 * (`offset` up to `end`: zlib reports the failure for a piece, not a byte). A damaged checksum is found
 * only at the end of the data.
 */
export class CorruptGzipError extends PgshiftError {
  constructor(file: string, offset: number, end: number, size: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const where = end > offset ? `bytes ${offset}-${end}` : `byte ${offset}`;
    super(
      "corrupt_gzip",
      `${file}: corrupt gzip data at ${where} of ${size} (${reason}); the file is damaged or truncated, copy or download it again`,
      { cause, details: { file, offset, end, size, zlibCode: (cause as { code?: string })?.code } },
    );
  }
}

/** True for the errors zlib raises on bad input (Z_DATA_ERROR, Z_BUF_ERROR for a truncated stream...). */
export function isZlibDataError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("Z_");
}
