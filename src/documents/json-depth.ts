/**
 * The nesting limit of a document. PostgreSQL's jsonb parser recurses (bounded by max_stack_depth: PostgreSQL
 * 15 with the default 2MB accepts 10,000 levels and fails at 20,000 with "stack depth limit exceeded", which
 * would abort a whole COPY), and so do JSON.stringify and the canonical forms verify computes. A record nested
 * deeper than this is a bad record (quarantined or failing the import, with its file and line), checked
 * with the iterative scans below before anything recursive sees it. 1,000 levels is far beyond real data.
 */
export const MAX_DOCUMENT_DEPTH = 1000;

/** The problem with a document nested deeper than MAX_DOCUMENT_DEPTH. */
export function tooDeepReason(limit = MAX_DOCUMENT_DEPTH): string {
  return `nested deeper than ${limit} levels (pgshift's limit for documents)`;
}

/** Whether JSON text nests objects/arrays deeper than `limit` (strings skipped; any text is scanned safely). */
export function textExceedsDepth(text: string, limit = MAX_DOCUMENT_DEPTH): boolean {
  // a text too short to nest that deep needs no scan
  if (text.length <= limit * 2) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i++;
      while (i < text.length) {
        const d = text.charCodeAt(i);
        if (d === 0x22) break;
        i += d === 0x5c ? 2 : 1;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** Whether a parsed value nests objects/arrays deeper than `limit`, walked with an explicit stack. */
export function valueExceedsDepth(value: unknown, limit = MAX_DOCUMENT_DEPTH): boolean {
  const stack: { node: unknown; depth: number }[] = [{ node: value, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || typeof node !== "object") continue;
    if (depth + 1 > limit) return true;
    const children = Array.isArray(node) ? node : Object.values(node as Record<string, unknown>);
    for (const child of children)
      if (child !== null && typeof child === "object") stack.push({ node: child, depth: depth + 1 });
  }
  return false;
}
