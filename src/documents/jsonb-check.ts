import { formatPointer } from "./json-pointer.ts";

/** Why PostgreSQL's jsonb would reject a parsed JSON value, with the JSON pointer of the culprit. */
export interface JsonbProblem {
  pointer: string;
  reason: string;
}

/**
 * JSON allows "\u0000" and lone surrogates ("\ud800"); PostgreSQL jsonb rejects both (22P05). Such a
 * record is quarantined or fails the import, never silently stripped. Walks strings and keys.
 */
export function findJsonbProblem(value: unknown): JsonbProblem | undefined {
  const path: (string | number)[] = [];
  const visit = (node: unknown): string | undefined => {
    if (typeof node === "string") return stringProblem(node);
    if (node === null || typeof node !== "object") return undefined;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        path.push(i);
        const problem = visit(node[i]);
        if (problem) return problem;
        path.pop();
      }
      return undefined;
    }
    for (const key of Object.keys(node)) {
      path.push(key);
      const keyProblem = stringProblem(key);
      if (keyProblem) return `${keyProblem} in a key`;
      const problem = visit((node as Record<string, unknown>)[key]);
      if (problem) return problem;
      path.pop();
    }
    return undefined;
  };
  const reason = visit(value);
  return reason ? { pointer: formatPointer(path), reason } : undefined;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function stringProblem(text: string): string | undefined {
  if (text.includes("\u0000")) return "NUL character (\\u0000), which PostgreSQL jsonb cannot store";
  if (LONE_SURROGATE.test(text))
    return "unpaired UTF-16 surrogate (e.g. \\ud800), which PostgreSQL jsonb cannot store";
  return undefined;
}

/**
 * Cheap pre-check on JSON text: only text with a "\u" escape can hold a NUL or a lone surrogate
 * (raw NUL bytes are invalid JSON already), so most records skip the walk.
 */
export function mayHaveJsonbProblem(jsonText: string): boolean {
  return jsonText.includes("\\u");
}
