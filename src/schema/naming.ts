import { createHash } from "node:crypto";

/** How source names become PostgreSQL names: kept exactly (quoted), or lower_snake_case for ORMs. */
export type NamingPolicy = "keep" | "snake";

/** PostgreSQL truncates identifiers longer than this many bytes; pgshift shortens them itself, reported. */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * lower_snake_case: `"Order Items"` -> `order_items`, `createdAt` -> `created_at`, `HTTPServer` -> `http_server`.
 */
export function toSnakeCase(name: string): string {
  const snake = name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_]+/gu, "_")
    .replace(/_+/g, "_")
    .replace(/^_+|_+$/g, "");
  return snake === "" ? "unnamed" : snake;
}

/** Shortens a name to 63 bytes keeping it unique: a prefix plus 8 hex digits of its hash. */
export function fitIdentifier(name: string): string {
  if (Buffer.byteLength(name) <= MAX_IDENTIFIER_BYTES) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  let prefix = name;
  while (Buffer.byteLength(prefix) > MAX_IDENTIFIER_BYTES - 9) prefix = prefix.slice(0, -1);
  return `${prefix}_${hash}`;
}

export function applyNaming(name: string, policy: NamingPolicy): string {
  return fitIdentifier(policy === "snake" ? toSnakeCase(name) : name);
}

/**
 * Hands out names in one PostgreSQL namespace (the relations of a schema, the columns of a table,
 * the constraints of a table) without collisions: a taken name gets `_2`, `_3`, ...
 */
export class NameAllocator {
  private readonly taken = new Set<string>();

  constructor(private readonly caseInsensitive = false) {}

  private key(name: string): string {
    return this.caseInsensitive ? name.toLowerCase() : name;
  }

  reserve(name: string): void {
    this.taken.add(this.key(name));
  }

  has(name: string): boolean {
    return this.taken.has(this.key(name));
  }

  allocate(wanted: string): string {
    let candidate = fitIdentifier(wanted);
    for (let n = 2; this.taken.has(this.key(candidate)); n++) {
      const suffix = `_${n}`;
      let base = wanted;
      while (Buffer.byteLength(base + suffix) > MAX_IDENTIFIER_BYTES) base = base.slice(0, -1);
      candidate = base + suffix;
    }
    this.taken.add(this.key(candidate));
    return candidate;
  }
}
