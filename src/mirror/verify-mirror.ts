import type pg from "pg";
import { type DocumentKey, DocumentStore } from "../documents/document-store.ts";
import { keyString, type MirrorEndpoint } from "./endpoints.ts";
import { ContentFingerprint } from "./fingerprint.ts";
import { readFreshness } from "./mirror-schema.ts";

export interface EndpointVerification {
  endpoint: string;
  rows: number;
  /** Fingerprint of what PostgreSQL holds (same hash as the pull's). */
  fingerprint: string;
  /** What the last pull or download recorded (pgshift.mirror_endpoints); null when never recorded. */
  expected: { records: number; fingerprint: string } | null;
  identical: boolean;
}

/**
 * Reads every document of each endpoint's table back and fingerprints it as the pull fingerprinted the
 * API's records: equal fingerprints and counts prove that 100 % of what was fetched is in PostgreSQL,
 * unchanged. Keyset-paged, so memory stays bounded.
 */
export async function verifyMirror(options: {
  pool: pg.Pool;
  schema: string;
  endpoints: readonly MirrorEndpoint[];
  pageSize?: number;
}): Promise<EndpointVerification[]> {
  const recorded = new Map(
    (
      await readFreshness(
        options.pool,
        options.endpoints.map((e) => e.name),
      )
    ).map((r) => [r.endpoint, r]),
  );
  const results: EndpointVerification[] = [];
  for (const endpoint of options.endpoints) {
    const store = new DocumentStore(options.pool, {
      schema: options.schema,
      table: endpoint.name,
      keyColumns: endpoint.key.map((k) => k.slice(1)),
    });
    const fingerprint = new ContentFingerprint();
    let rows = 0;
    let after: DocumentKey | undefined;
    for (;;) {
      const page = await store.page({
        ...(after !== undefined ? { after } : {}),
        limit: options.pageSize ?? 1000,
      });
      for (const row of page.rows) {
        fingerprint.add(keyString(Array.isArray(row.key) ? row.key.map(String) : [String(row.key)]), row.doc);
        rows += 1;
      }
      if (page.next === undefined) break;
      after = page.next;
    }
    const row = recorded.get(endpoint.name);
    const expected = row ? { records: row.recordCount, fingerprint: row.fingerprint } : null;
    results.push({
      endpoint: endpoint.name,
      rows,
      fingerprint: fingerprint.toString(),
      expected,
      identical:
        expected !== null && expected.records === rows && expected.fingerprint === fingerprint.toString(),
    });
  }
  return results;
}
