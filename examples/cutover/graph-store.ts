// The second store of the example: a graph of projects and their dependency edges. The legacy side
// lives in process memory; the next side is two relational tables. Both implement GraphStore.
import type pg from "pg";
import type { CutoverBackfillSink, CutoverKeyAccess } from "../../src/cutover/index.ts";
import { upsertSink } from "../../src/cutover/index.ts";
import { withTransaction } from "../../src/pg/pool.ts";

export interface Project {
  id: string;
  name: string;
  owner: string;
}

export interface GraphStore {
  getProject(id: string): Promise<Project | undefined>;
  putProject(project: Project): Promise<void>;
  deleteProject(id: string): Promise<void>;
  addDependency(from: string, to: string): Promise<void>;
  removeDependency(from: string, to: string): Promise<void>;
  /** Projects `id` depends on, sorted. */
  dependenciesOf(id: string): Promise<string[]>;
  projectIds(): AsyncIterable<string>;
}

export class MemoryGraphStore implements GraphStore {
  readonly projects = new Map<string, Project>();
  readonly edges = new Map<string, Set<string>>();

  async getProject(id: string): Promise<Project | undefined> {
    const project = this.projects.get(id);
    return project && { ...project };
  }

  async putProject(project: Project): Promise<void> {
    this.projects.set(project.id, { ...project });
  }

  async deleteProject(id: string): Promise<void> {
    this.projects.delete(id);
    this.edges.delete(id);
    for (const targets of this.edges.values()) targets.delete(id);
  }

  async addDependency(from: string, to: string): Promise<void> {
    if (!this.edges.has(from)) this.edges.set(from, new Set());
    this.edges.get(from)!.add(to);
  }

  async removeDependency(from: string, to: string): Promise<void> {
    this.edges.get(from)?.delete(to);
  }

  async dependenciesOf(id: string): Promise<string[]> {
    return [...(this.edges.get(id) ?? [])].sort();
  }

  async *projectIds(): AsyncIterable<string> {
    for (const id of [...this.projects.keys()]) yield id;
  }
}

/** The PostgreSQL implementation: `projects` and `project_dependencies` tables. */
export class PgGraphStore implements GraphStore {
  /** Set by the example to simulate an outage of the new database for a moment. */
  failing = false;

  constructor(private readonly pool: pg.Pool) {}

  async ensureTables(): Promise<void> {
    await this.pool.query(`
      create table if not exists projects (id text primary key, name text not null, owner text not null);
      create table if not exists project_dependencies (
        from_id text not null, to_id text not null, primary key (from_id, to_id));
      create index if not exists project_dependencies_to_idx on project_dependencies (to_id)`);
  }

  private check(): void {
    if (this.failing) throw new Error("graph database unreachable (simulated outage)");
  }

  async getProject(id: string): Promise<Project | undefined> {
    this.check();
    const { rows } = await this.pool.query("select id, name, owner from projects where id = $1", [id]);
    return rows[0];
  }

  async putProject(project: Project): Promise<void> {
    this.check();
    await this.pool.query(
      `insert into projects (id, name, owner) values ($1, $2, $3)
       on conflict (id) do update set name = excluded.name, owner = excluded.owner`,
      [project.id, project.name, project.owner],
    );
  }

  async deleteProject(id: string): Promise<void> {
    this.check();
    await withTransaction(this.pool, async (client) => {
      await client.query("delete from project_dependencies where from_id = $1 or to_id = $1", [id]);
      await client.query("delete from projects where id = $1", [id]);
    });
  }

  async addDependency(from: string, to: string): Promise<void> {
    this.check();
    await this.pool.query(
      "insert into project_dependencies (from_id, to_id) values ($1, $2) on conflict do nothing",
      [from, to],
    );
  }

  async removeDependency(from: string, to: string): Promise<void> {
    this.check();
    await this.pool.query("delete from project_dependencies where from_id = $1 and to_id = $2", [from, to]);
  }

  async dependenciesOf(id: string): Promise<string[]> {
    this.check();
    const { rows } = await this.pool.query(
      "select to_id from project_dependencies where from_id = $1 order by to_id",
      [id],
    );
    return rows.map((r) => r.to_id);
  }

  async *projectIds(): AsyncIterable<string> {
    const { rows } = await this.pool.query("select id from projects order by id");
    for (const row of rows) yield row.id;
  }
}

/** What one key (a project id) holds: the project and its outgoing edges. */
export interface ProjectNode {
  project: Project;
  dependsOn: string[];
}

/** Per-key access, so the repairer and verifier compare and copy whole nodes. */
export const graphAccess: CutoverKeyAccess<GraphStore> = {
  async read(store, id) {
    const project = await store.getProject(id);
    const dependsOn = await store.dependenciesOf(id);
    return project ? { project, dependsOn } : dependsOn.length ? { project: null, dependsOn } : undefined;
  },
  async write(store, id, value) {
    const node = value as ProjectNode | undefined;
    if (!node?.project) {
      await store.deleteProject(id);
      return;
    }
    await store.putProject(node.project);
    const have = new Set(await store.dependenciesOf(id));
    for (const to of node.dependsOn) if (!have.has(to)) await store.addDependency(id, to);
    for (const to of have) if (!node.dependsOn.includes(to)) await store.removeDependency(id, to);
  },
  keys: (store) => store.projectIds(),
};

/** Every node of the in-memory graph, for the backfill. */
export async function* memoryNodes(store: MemoryGraphStore): AsyncIterable<ProjectNode> {
  for (const [id, project] of [...store.projects.entries()])
    yield { project: { ...project }, dependsOn: await store.dependenciesOf(id) };
}

/** Backfill sink: both tables through COPY + INSERT ... ON CONFLICT (upsertSink), batch by batch. */
export function graphSink(pool: pg.Pool): CutoverBackfillSink<ProjectNode> {
  const projects = upsertSink<Project>(pool, {
    table: "projects",
    keyColumns: ["id"],
    columns: ["id", "name", "owner"],
    toRow: (p) => [p.id, p.name, p.owner],
  });
  const edges = upsertSink<[string, string]>(pool, {
    table: "project_dependencies",
    keyColumns: ["from_id", "to_id"],
    columns: ["from_id", "to_id"],
    toRow: (edge) => edge,
  });
  return async (batch) => {
    const written = await projects(batch.map((node) => node.project));
    const pairs = batch.flatMap((node) =>
      node.dependsOn.map((to) => [node.project.id, to] as [string, string]),
    );
    if (pairs.length) await edges(pairs);
    return written;
  };
}
