import type { SourceSpec } from "../../sources/source-spec.ts";
import type { CommandContext } from "../context.ts";

/**
 * `pgshift import json:DIR|json:FILE|ndjson:FILE|csv:FILE`: called by the import command for document
 * sources with its parsed options; returns the exit code.
 */
export async function runDocumentImport(
  ctx: CommandContext,
  spec: SourceSpec,
  opts: Record<string, unknown>,
): Promise<number> {
  void ctx;
  void opts;
  throw new Error(`document import of ${spec.spec} is being built`);
}
