/** A small deterministic PRNG (mulberry32) so generated data is identical from run to run. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(length: number): Buffer {
    const buffer = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i += 4) {
      const word = Math.floor(this.next() * 4294967296);
      buffer[i] = word & 0xff;
      if (i + 1 < length) buffer[i + 1] = (word >>> 8) & 0xff;
      if (i + 2 < length) buffer[i + 2] = (word >>> 16) & 0xff;
      if (i + 3 < length) buffer[i + 3] = (word >>> 24) & 0xff;
    }
    return buffer;
  }

  words(list: readonly string[], count: number): string {
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(this.pick(list));
    return out.join(" ");
  }
}

export const WORDS = [
  "alpha",
  "bravo",
  "catheter",
  "delta",
  "engine",
  "fabric",
  "gateway",
  "harbor",
  "index",
  "journal",
  "kernel",
  "ledger",
  "matrix",
  "nebula",
  "orbit",
  "pixel",
  "quartz",
  "rocket",
  "signal",
  "tunnel",
  "update",
  "vector",
  "widget",
  "xenon",
  "yield",
  "zephyr",
  "migrate",
  "refactor",
  "deploy",
  "review",
  "billing",
  "invoice",
  "customer",
  "report",
  "export",
  "import",
  "schema",
  "backup",
  "restore",
  "metric",
  "Zürich",
  "café",
  "naïve",
  "résumé",
  "日本",
  "données",
  "straße",
  "smörgåsbord",
  "piñata",
  "façade",
];

export const FIRST_NAMES = [
  "Ada",
  "Grace",
  "Linus",
  "Barbara",
  "Edsger",
  "Frances",
  "Ken",
  "Margaret",
  "Dennis",
  "Radia",
  "Donald",
  "Hedy",
  "Alan",
  "Katherine",
  "Niklaus",
  "Sophie",
  "Tim",
  "Anita",
  "Guido",
  "Yukihiro",
];

export const LAST_NAMES = [
  "Lovelace",
  "Hopper",
  "Torvalds",
  "Liskov",
  "Dijkstra",
  "Allen",
  "Thompson",
  "Hamilton",
  "Ritchie",
  "Perlman",
  "Knuth",
  "Lamarr",
  "Turing",
  "Johnson",
  "Wirth",
  "Wilson",
  "Berners-Lee",
  "Borg",
  "O'Brien",
  "van Rossum",
];
