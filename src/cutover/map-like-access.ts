import type { CutoverKeyAccess } from "./repair-ledger.ts";

/** Method names of a Map-like store (a `Map`, or anything with get/set|put/delete/keys, sync or async). */
export interface MapLikeMethods {
  get?: string;
  /** Default: `set` when the store has it, else `put`. */
  set?: string;
  delete?: string;
  /** Default: `keys`; without it the verifier needs explicit keys. */
  keys?: string;
}

type Callable = (...args: unknown[]) => unknown;

function method(store: unknown, name: string): Callable {
  const fn = (store as Record<string, unknown>)[name];
  if (typeof fn !== "function") throw new Error(`the store has no method ${name}`);
  return (fn as Callable).bind(store);
}

/**
 * Per-key access for Map-like stores, so the repairer and verifier need no adapter code:
 * `createCutover({ legacy: new Map(), next: documentMap(store), keyAccess: mapLikeAccess(), ... })`.
 */
export function mapLikeAccess<T>(methods: MapLikeMethods = {}): CutoverKeyAccess<T> {
  const setName = (store: T) =>
    methods.set ?? (typeof (store as Record<string, unknown>).set === "function" ? "set" : "put");
  return {
    read: async (store, key) => (await method(store, methods.get ?? "get")(key)) ?? undefined,
    write: async (store, key, value) => {
      if (value === undefined || value === null) await method(store, methods.delete ?? "delete")(key);
      else await method(store, setName(store))(key, value);
    },
    keys: (store) => {
      const listed = method(store, methods.keys ?? "keys")();
      return toKeys(listed);
    },
  };
}

async function* toKeys(listed: unknown): AsyncIterable<string> {
  const resolved = await listed;
  for await (const key of resolved as AsyncIterable<unknown>) yield String(key);
}
