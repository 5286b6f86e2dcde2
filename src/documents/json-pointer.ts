import { UsageError } from "../errors.ts";

/**
 * RFC 6901 JSON pointers: "/a/b~1c/0" -> ["a", "b/c", "0"]. The empty pointer "" is the whole document.
 */
export function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) {
    throw new UsageError(`"${pointer}" is not a JSON pointer; write it as /field or /parent/child`);
  }
  return pointer
    .slice(1)
    .split("/")
    .map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** Joins segments back into a pointer ("~" and "/" escaped). */
export function formatPointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

/** The value at `segments` in `value`, or undefined when any step is missing. */
export function getAtPointer(value: unknown, segments: readonly string[]): unknown {
  let current: unknown = value;
  for (const segment of segments) {
    if (Array.isArray(current)) {
      if (!/^(0|[1-9]\d*)$/.test(segment)) return undefined;
      current = current[Number(segment)];
    } else if (current !== null && typeof current === "object") {
      if (!Object.hasOwn(current, segment)) return undefined;
      current = (current as Record<string, unknown>)[segment];
    } else {
      return undefined;
    }
  }
  return current;
}

/** A column name derived from a pointer: "/openfda/k_number" -> "openfda_k_number". */
export function columnNameForPointer(segments: readonly string[]): string {
  const name = segments.join("_");
  return name === "" ? "value" : name;
}
