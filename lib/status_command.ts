/**
 * `status`: what a database holds — counts by dataset and status, the last activity, the most
 * frequent errors — or, with `--failed`, the failed URLs in a form `--urls -` reads back.
 *
 * @module
 */

import type { Command } from "commander";
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { openExistingDatabase } from "./store.ts";
import { type ErrorCount, formatErrorCounts, TOP_ERRORS } from "./summary.ts";
import { processOutput } from "./stdio.ts";
import { EXIT } from "./run_ingest.ts";

/** One dataset's rows. */
export interface DatasetStatus {
  dataset_id: string;
  /** Rows by status (`success`, `failed`, `skipped`). */
  counts: Record<string, number>;
  total: number;
  /** The latest `finished_at` (or `started_at` where it is empty), as stored. */
  last_activity: string | null;
}

/** The `status --json` object. */
export interface StatusReport {
  db: string;
  datasets: DatasetStatus[];
  /** The most frequent errors of failed rows, most frequent first. */
  top_errors: ErrorCount[];
}

/** A failed row, as `status --failed` lists it. */
export interface FailedRow {
  url: string;
  dataset_id: string;
  http_status: number | null;
  error: string | null;
}

const STATUSES = ["success", "failed", "skipped"];

function datasetFilter(datasetId: string | undefined): { where: string; params: SQLInputValue[] } {
  return datasetId === undefined
    ? { where: "", params: [] }
    : { where: "AND dataset_id = ?", params: [datasetId] };
}

/** Counts and top errors of the `downloads` table, optionally of one dataset only. */
export function statusReport(db: DatabaseSync, path: string, datasetId?: string): StatusReport {
  const { where, params } = datasetFilter(datasetId);
  const groups = db.prepare(`SELECT dataset_id, status, count(*) AS n,
      max(coalesce(finished_at, started_at)) AS last
    FROM downloads WHERE 1 ${where} GROUP BY dataset_id, status ORDER BY dataset_id, status`)
    .all(...params) as { dataset_id: string; status: string; n: number; last: string | null }[];
  const datasets: DatasetStatus[] = [];
  for (const group of groups) {
    let dataset = datasets.at(-1);
    if (dataset?.dataset_id !== group.dataset_id) {
      dataset = { dataset_id: group.dataset_id, counts: {}, total: 0, last_activity: null };
      datasets.push(dataset);
    }
    dataset.counts[group.status] = group.n;
    dataset.total += group.n;
    if (group.last !== null && (dataset.last_activity ?? "") < group.last) {
      dataset.last_activity = group.last;
    }
  }
  const topErrors = db.prepare(`SELECT coalesce(error, '(no message)') AS error, count(*) AS count
    FROM downloads WHERE status = 'failed' ${where}
    GROUP BY 1 ORDER BY count DESC, error LIMIT ${TOP_ERRORS}`)
    .all(...params) as unknown as ErrorCount[];
  return { db: path, datasets, top_errors: topErrors };
}

/** The failed rows, in the order they were first recorded. */
export function failedRows(db: DatabaseSync, datasetId?: string): IterableIterator<FailedRow> {
  const { where, params } = datasetFilter(datasetId);
  return db.prepare(`SELECT url, dataset_id, http_status, error FROM downloads
    WHERE status = 'failed' ${where} ORDER BY rowid`)
    .iterate(...params) as IterableIterator<FailedRow>;
}

/**
 * One line per failed URL: the URL, then its error as a comment (`URL  # error`), which the URL
 * list reader drops, so the output can be fed back with `--urls -`.
 */
export function formatFailedLine(row: FailedRow): string {
  const error = (row.error ?? "no message").replace(/\s+/g, " ").trim();
  return `${row.url}  # ${error}`;
}

/** The report for people, ending with a newline. */
export function formatStatus(report: StatusReport): string {
  if (report.datasets.length === 0) return `${report.db}: no rows\n`;
  const header = ["dataset", ...STATUSES, "total", "last activity"];
  const rows = report.datasets.map((d) => [
    d.dataset_id,
    ...STATUSES.map((s) => String(d.counts[s] ?? 0)),
    String(d.total),
    d.last_activity ?? "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) =>
      i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])
    ).join("  ").trimEnd();
  const lines = [line(header), ...rows.map(line)];
  if (report.top_errors.length > 0) {
    lines.push("top errors of failed URLs:", ...formatErrorCounts(report.top_errors));
  }
  return lines.join("\n") + "\n";
}

interface StatusFlags {
  db: string;
  datasetId?: string;
  failed?: true;
  json?: true;
}

function statusAction(flags: StatusFlags): number {
  const output = processOutput();
  const db = openExistingDatabase(flags.db);
  try {
    if (flags.failed) {
      for (const row of failedRows(db, flags.datasetId)) {
        output.out(flags.json ? `${JSON.stringify(row)}\n` : `${formatFailedLine(row)}\n`);
      }
    } else {
      const report = statusReport(db, flags.db, flags.datasetId);
      output.out(flags.json ? `${JSON.stringify(report)}\n` : formatStatus(report));
    }
    return EXIT.ok;
  } finally {
    db.close();
  }
}

/** Adds the `status` subcommand to `program`; `run` receives its exit code. */
export function registerStatusCommand(
  program: Command,
  run: (code: Promise<number>) => void,
): void {
  program.command("status")
    .description(
      "report what a database holds: counts by dataset and status, last activity, top errors",
    )
    .helpOption("-h, --help", "show this help and exit")
    .requiredOption("--db <file>", "SQLite database of results")
    .option("--dataset-id <id>", "only this dataset")
    .option(
      "--failed",
      "list failed URLs instead, one per line with its error as a # comment (for --urls -)",
    )
    .option(
      "--json",
      "print the report as one JSON object (with --failed: one JSON object per line)",
    )
    .action((flags: StatusFlags) => {
      run(Promise.resolve(statusAction(flags)));
    });
}
