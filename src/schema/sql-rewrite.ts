import { scanSync } from "libpg-query";

/**
 * Editing PostgreSQL text through its parse tree: the parser gives each node a location (a byte
 * offset), its lexer gives the tokens; together they give each expression's extent, so a rewrite
 * replaces exactly the text of the nodes it changes and keeps everything else verbatim.
 */

export type Node = Record<string, unknown>;

export interface PgToken {
  /** Character offsets into the text. */
  start: number;
  end: number;
  text: string;
}

export interface Extent {
  start: number;
  end: number;
}

export function* walk(node: unknown): Generator<Node> {
  if (Array.isArray(node)) {
    for (const item of node) yield* walk(item);
    return;
  }
  if (node === null || typeof node !== "object") return;
  yield node as Node;
  for (const value of Object.values(node)) yield* walk(value);
}

/** The one key of a parse-tree node wrapper (`{ FuncCall: {...} }` -> ["FuncCall", {...}]). */
export function nodeKind(node: unknown): [string, Node] | undefined {
  if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const inner = (node as Node)[keys[0]!];
  if (inner === null || typeof inner !== "object") return undefined;
  return [keys[0]!, inner as Node];
}

export class SqlText {
  readonly tokens: PgToken[];
  /** Byte offset -> character offset (the parser counts UTF-8 bytes). */
  private readonly charOf: (byte: number) => number;
  private readonly byStart = new Map<number, number>();

  constructor(readonly text: string) {
    const bytes = Buffer.from(text, "utf8");
    if (bytes.length === text.length) this.charOf = (b) => b;
    else {
      const map: number[] = [];
      let byte = 0;
      for (let i = 0; i < text.length; i++) {
        const code = text.codePointAt(i)!;
        const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
        for (let k = 0; k < size; k++) map[byte + k] = i;
        byte += size;
        if (code >= 0x10000) i++;
      }
      map[byte] = text.length;
      this.charOf = (b) => map[b] ?? text.length;
    }
    this.tokens = scanSync(text).tokens.map((t) => {
      const start = this.charOf(t.start);
      const end = this.charOf(t.end);
      return { start, end, text: text.slice(start, end) };
    });
    this.tokens.forEach((t, i) => this.byStart.set(t.start, i));
  }

  /** The index of the token a parse-tree location points at. */
  tokenAt(location: number): number | undefined {
    return this.byStart.get(this.charOf(location));
  }

  is(index: number, word: string): boolean {
    return this.tokens[index]?.text.toLowerCase() === word;
  }

  /** Index of the token closing the parenthesis opened at `open`. */
  matching(open: number): number {
    let depth = 0;
    for (let i = open; i < this.tokens.length; i++) {
      if (this.is(i, "(")) depth++;
      else if (this.is(i, ")") && --depth === 0) return i;
    }
    return this.tokens.length - 1;
  }

  /** Index of the `END` closing the `CASE` at `caseIndex`. */
  private caseEnd(caseIndex: number): number {
    let depth = 0;
    for (let i = caseIndex; i < this.tokens.length; i++) {
      if (this.is(i, "case")) depth++;
      else if (this.is(i, "end") && --depth === 0) return i;
    }
    return this.tokens.length - 1;
  }

  /** A function call, from its name to its closing parenthesis (and a FILTER / OVER clause after it). */
  call(location: number): { extent: Extent; open: number; close: number } | undefined {
    const first = this.tokenAt(location);
    if (first === undefined) return undefined;
    let open = first;
    while (open < this.tokens.length && !this.is(open, "(")) open++;
    const close = this.matching(open);
    let last = close;
    if (this.is(last + 1, "filter")) last = this.matching(last + 2);
    if (this.is(last + 1, "over")) last = this.is(last + 2, "(") ? this.matching(last + 2) : last + 2;
    return { extent: { start: this.tokens[first]!.start, end: this.tokens[last]!.end }, open, close };
  }

  /** The top-level comma-separated parts between `open` and `close` (exclusive), as token index ranges. */
  parts(open: number, close: number): [number, number][] {
    const parts: [number, number][] = [];
    let depth = 0;
    let from = open + 1;
    for (let i = open + 1; i < close; i++) {
      if (this.is(i, "(")) depth++;
      else if (this.is(i, ")")) depth--;
      else if (depth === 0 && this.is(i, ",")) {
        parts.push([from, i - 1]);
        from = i + 1;
      }
    }
    if (from <= close - 1) parts.push([from, close - 1]);
    return parts;
  }

  span(firstToken: number, lastToken: number): Extent {
    return { start: this.tokens[firstToken]!.start, end: this.tokens[lastToken]!.end };
  }

  /**
   * The text an expression node covers: from its first located token to its last, grown to balance
   * parentheses, to close function calls, CAST(...) and CASE ... END, and over a trailing `IS [NOT] NULL`.
   */
  extent(node: unknown): Extent | undefined {
    let first = Infinity;
    let last = -Infinity;
    for (const n of walk(node)) {
      for (const [kind, inner] of [nodeKind(n)].filter((k) => k !== undefined)) {
        const location = inner.location;
        if (typeof location !== "number" || location < 0) continue;
        const index = this.tokenAt(location);
        if (index === undefined) continue;
        first = Math.min(first, index);
        let end = index;
        if (kind === "FuncCall") end = this.tokenIndexOf(this.call(location)?.extent.end) ?? index;
        else if (kind === "TypeCast" && this.is(index, "cast")) end = this.matching(index + 1);
        else if (kind === "CaseExpr") end = this.caseEnd(index);
        else if (kind === "ColumnRef") end = index + 2 * ((inner.fields as unknown[]).length - 1);
        else if (kind === "A_Const" && this.is(index, "-")) end = index + 1;
        else if (kind === "CollateClause" && this.is(index, "collate")) end = index + 1;
        else if (kind === "NullTest") {
          end = index;
          while (
            ["is", "not", "null", "isnull", "notnull", "true", "false", "unknown"].includes(
              this.tokens[end + 1]?.text.toLowerCase() ?? "",
            )
          )
            end++;
        }
        last = Math.max(last, end);
      }
    }
    if (!Number.isFinite(first)) return undefined;
    // Balance parentheses: an unmatched `)` means the node started at an earlier `(`.
    let depth = 0;
    let minDepth = 0;
    for (let i = first; i <= last; i++) {
      if (this.is(i, "(")) depth++;
      else if (this.is(i, ")")) minDepth = Math.min(minDepth, --depth);
    }
    while (minDepth < 0 && first > 0) {
      first--;
      if (this.is(first, "(")) minDepth++;
      else if (this.is(first, ")")) minDepth--;
    }
    depth = 0;
    for (let i = first; i <= last; i++) {
      if (this.is(i, "(")) depth++;
      else if (this.is(i, ")")) depth--;
    }
    while (depth > 0 && last < this.tokens.length - 1) {
      last++;
      if (this.is(last, "(")) depth++;
      else if (this.is(last, ")")) depth--;
    }
    return this.span(first, last);
  }

  private tokenIndexOf(end: number | undefined): number | undefined {
    if (end === undefined) return undefined;
    const index = this.tokens.findIndex((t) => t.end === end);
    return index < 0 ? undefined : index;
  }
}

/** Replaces the text of `start..end`; `build` renders sub-ranges with the replacements nested in them. */
export interface Replacement extends Extent {
  build: (render: (range: Extent) => string) => string;
}

export class OverlappingEdits extends Error {
  readonly code = "overlapping_edits";
}

/**
 * Applies replacements to the text. Replacements nest (an argument's rewrite inside its call's) or
 * are disjoint; a partial overlap would mean a wrong extent, so it throws rather than guess.
 */
export function applyReplacements(text: string, replacements: readonly Replacement[]): string {
  const sorted = [...replacements].sort((a, b) => a.start - b.start || b.end - a.end);
  const render = (range: Extent, after: number): string => {
    let out = "";
    let cursor = range.start;
    for (let i = after + 1; i < sorted.length; i++) {
      const r = sorted[i]!;
      if (r.start < range.start || r.end > range.end) {
        const contains = r.start <= range.start && r.end >= range.end;
        const disjoint = r.end <= range.start || r.start >= range.end;
        if (!contains && !disjoint) throw new OverlappingEdits(`edits overlap at ${r.start}`);
        continue;
      }
      if (r.start < cursor) {
        if (r.end > cursor) throw new OverlappingEdits(`edits overlap at ${r.start}`);
        continue;
      }
      out += text.slice(cursor, r.start) + r.build((inner) => render(inner, i));
      cursor = r.end;
    }
    return out + text.slice(cursor, range.end);
  };
  return render({ start: 0, end: text.length }, -1);
}
