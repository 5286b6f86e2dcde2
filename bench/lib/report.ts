import type { BenchResult, Ratio, ScenarioResult } from "./result.ts";

export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

function cell(value: string | number): string {
  const text = typeof value === "number" ? formatNumber(value) : value;
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

export function markdownTable(headers: readonly string[], rows: readonly (string | number)[][]): string {
  const lines = [`| ${headers.map(cell).join(" | ")} |`, `| ${headers.map(() => "---").join(" | ")} |`];
  for (const row of rows) lines.push(`| ${row.map(cell).join(" | ")} |`);
  return lines.join("\n");
}

function targetText(r: Ratio): string {
  return r.target ? `${r.target.op} ${r.target.value}` : "—";
}

function metText(r: Ratio): string {
  if (r.met === null) return r.value === null ? "not measured" : "—";
  return r.met ? "yes" : "**no**";
}

export interface HeadlineRow {
  scenario: string;
  key: string;
  ratio: Ratio;
}

export function headlineRows(result: BenchResult): HeadlineRow[] {
  const rows: HeadlineRow[] = [];
  for (const scenario of Object.values(result.scenarios)) {
    for (const [key, r] of Object.entries(scenario.ratios))
      rows.push({ scenario: scenario.name, key, ratio: r });
  }
  return rows;
}

function machineLine(result: BenchResult): string {
  const m = result.machine;
  return [
    `${m.cpus} × ${m.cpuModel}`,
    `${m.memoryGb} GB RAM`,
    `${m.os} (${m.kernel})`,
    `Node ${m.node}`,
    `PostgreSQL ${m.postgres}`,
    `load average at start ${m.loadAvgStart.map((n) => n.toFixed(2)).join(" ")}${m.loadAvgEnd ? `, at end ${m.loadAvgEnd.map((n) => n.toFixed(2)).join(" ")}` : ""}`,
  ].join("; ");
}

function scenarioSection(s: ScenarioResult): string {
  const load = s.loadAvg1m
    ? ` Load average (1 min) ${s.loadAvg1m.start.toFixed(1)} at start, ${s.loadAvg1m.end.toFixed(1)} at end.`
    : "";
  const parts = [
    `### ${s.name} — ${s.status}`,
    "",
    `${s.summary} Took ${formatNumber(s.durationS)} s.${load}`,
    "",
  ];
  for (const table of s.tables) {
    parts.push(`**${table.title}**`, "", markdownTable(table.headers, table.rows), "");
  }
  if (s.notes.length > 0) {
    for (const note of s.notes) parts.push(`- ${note}`);
    parts.push("");
  }
  return parts.join("\n");
}

export const README_START = "<!-- bench:latest:start -->";
export const README_END = "<!-- bench:latest:end -->";

/** The headline table and chart for bench/README.md (links relative to bench/). */
export function renderReadmeBlock(result: BenchResult): string {
  const rows = headlineRows(result).map(({ scenario, key, ratio: r }) => [
    scenario,
    `\`${key}\``,
    formatNumber(r.value),
    targetText(r),
    metText(r),
  ]);
  return [
    README_START,
    `Latest run: ${result.mode} mode, ${result.startedAt}, ${formatNumber(result.durationS)} s. Machine: ${machineLine(result)}.`,
    "",
    markdownTable(["scenario", "key", "value", "target", "met"], rows),
    "",
    "![headline ratios: margin over each target](results/latest.svg)",
    "",
    "Full figures: [results/latest.md](results/latest.md), raw data: [results/latest.json](results/latest.json).",
    README_END,
  ].join("\n");
}

/** Replaces the block between the markers in `readme` (unchanged when the markers are absent). */
export function replaceReadmeBlock(readme: string, block: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) return readme;
  return `${readme.slice(0, start)}${block}${readme.slice(end + README_END.length)}`;
}

/** The Markdown report: headline ratios first, then each scenario's figures, then the machine and tools. */
export function renderMarkdown(result: BenchResult): string {
  const rows = headlineRows(result).map(({ scenario, key, ratio: r }) => [
    scenario,
    `\`${key}\``,
    r.label,
    formatNumber(r.value),
    targetText(r),
    metText(r),
  ]);
  const tools = Object.entries(result.machine.tools).map(([name, version]) => [name, version]);
  return [
    `## Benchmark results (${result.mode} run, ${result.startedAt})`,
    "",
    `Machine: ${machineLine(result)}. Every headline figure is a ratio of two measurements taken side by side in this run; absolute times are secondary.`,
    "",
    markdownTable(["scenario", "key", "ratio", "value", "target", "met"], rows),
    "",
    "![headline ratios](latest.svg)",
    "",
    ...Object.values(result.scenarios).map(scenarioSection),
    "### Tools",
    "",
    markdownTable(["tool", "version"], tools),
    "",
    `pgshift ${result.machine.pgshiftVersion} at commit ${result.machine.gitCommit}; run took ${formatNumber(result.durationS)} s (\`${["npm run bench --", ...result.argv].join(" ")}\`).`,
    "",
  ].join("\n");
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * How far a ratio is past its target, as a factor: >1 means the target is met with that margin.
 * "<=" and "<" targets are better when smaller, so the margin is target / value.
 */
export function targetMargin(r: Ratio): number | null {
  if (r.value === null || !r.target || r.value <= 0) return null;
  return r.target.op === "<=" || r.target.op === "<" ? r.target.value / r.value : r.value / r.target.value;
}

/**
 * A hand-drawn horizontal bar chart of every headline ratio with a target: bar length is the margin
 * over the target on a log scale, the vertical line is the target itself, green = met, red = missed.
 */
export function renderSvg(result: BenchResult): string {
  const rows = headlineRows(result).filter((row) => row.ratio.target !== null);
  const width = 960;
  const labelWidth = 430;
  const barArea = width - labelWidth - 150;
  const rowHeight = 30;
  const top = 64;
  const height = top + rows.length * rowHeight + 56;
  const minLog = Math.log10(1 / 10);
  const maxLog = Math.log10(100);
  const x = (margin: number) => {
    const clamped = Math.min(maxLog, Math.max(minLog, Math.log10(margin)));
    return labelWidth + ((clamped - minLog) / (maxLog - minLog)) * barArea;
  };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">pgshift benchmark: margin over each target (${escapeXml(result.mode)} run, ${escapeXml(result.startedAt.slice(0, 16))}Z)</text>`,
    `<text x="16" y="44" fill="#555">${escapeXml(`${result.machine.cpus} CPUs, ${result.machine.memoryGb} GB, PostgreSQL ${result.machine.postgres}, Node ${result.machine.node}. Bar = how far past the target (log scale); line = target.`)}</text>`,
  ];
  for (const tick of [0.1, 0.3, 1, 3, 10, 30, 100]) {
    const tx = x(tick);
    out.push(
      `<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${top + rows.length * rowHeight}" stroke="${tick === 1 ? "#222" : "#ddd"}" stroke-width="${tick === 1 ? 2 : 1}"/>`,
      `<text x="${tx}" y="${top + rows.length * rowHeight + 18}" text-anchor="middle" fill="#555">${tick}×</text>`,
    );
  }
  rows.forEach((row, i) => {
    const y = top + i * rowHeight;
    const margin = targetMargin(row.ratio);
    const label = `${row.scenario}: ${row.key}`;
    out.push(`<text x="${labelWidth - 8}" y="${y + 19}" text-anchor="end">${escapeXml(label)}</text>`);
    const valueText = `${formatNumber(row.ratio.value)} (target ${row.ratio.target!.op} ${row.ratio.target!.value})`;
    if (margin === null) {
      out.push(`<text x="${labelWidth + 4}" y="${y + 19}" fill="#888">not measured</text>`);
      return;
    }
    const x0 = x(1);
    const x1 = x(margin);
    const color = row.ratio.met ? "#2e7d32" : "#c62828";
    out.push(
      `<rect x="${Math.min(x0, x1)}" y="${y + 6}" width="${Math.max(1, Math.abs(x1 - x0))}" height="${rowHeight - 12}" fill="${color}"/>`,
      `<text x="${labelWidth + barArea + 8}" y="${y + 19}" fill="${color}">${escapeXml(valueText)}</text>`,
    );
  });
  out.push(
    `<text x="16" y="${height - 12}" fill="#555">${escapeXml("Green: target met; red: missed. Right of the black line = better than the target.")}</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}
