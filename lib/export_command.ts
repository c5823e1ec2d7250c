/**
 * `export`: write the Parquet manifest of a database, and upload it if asked, without ingesting
 * anything — after a run whose final upload failed, say, or to publish a manifest elsewhere.
 *
 * @module
 */

import { type Command, Option } from "commander";
import { basename } from "node:path";
import { runCheckpoint } from "./checkpoint.ts";
import { DEFAULT_WORKER_URL, httpUrl, requireToken, TOKEN_ENV } from "./cli_options.ts";
import { keyUnderPrefix } from "./object_key.ts";
import { EXIT } from "./run_ingest.ts";
import { processOutput } from "./stdio.ts";
import { formatUpload } from "./summary.ts";
import { DownloadStore, openExistingDatabase } from "./store.ts";
import { preflight, type WorkerEndpoint } from "./worker_client.ts";
import type { RetryPolicy } from "./retry_policy.ts";

/** The ingest command's defaults for `--timeout`, `--max-retries` and the retry delays. */
const UPLOAD_TIMEOUT_MS = 600_000;
const UPLOAD_POLICY: RetryPolicy = { maxRetries: 3, baseDelayMs: 2_000, maxDelayMs: 60_000 };

/** The `export --json` object. */
export interface ExportReport {
  parquet: { path: string; rows: number };
  /** `null` without `--upload`. */
  upload: { key: string; ok: boolean; attempts: number; error: string | null } | null;
}

interface ExportFlags {
  db: string;
  out: string;
  upload?: true;
  workerUrl: string;
  authToken?: string;
  keyPrefix: string;
  json?: true;
}

async function exportAction(flags: ExportFlags): Promise<number> {
  const output = processOutput();
  let endpoint: WorkerEndpoint | null = null;
  if (flags.upload === true) {
    endpoint = {
      url: flags.workerUrl,
      authToken: requireToken(flags.authToken),
      timeoutMs: UPLOAD_TIMEOUT_MS,
    };
  }
  const db = openExistingDatabase(flags.db);
  try {
    // A bad token or worker URL is found before the export, not after it.
    if (endpoint !== null) await preflight(endpoint, UPLOAD_POLICY);
    const path = `${flags.out}.parquet`;
    const key = keyUnderPrefix(flags.keyPrefix, `${basename(flags.out)}.parquet`);
    const result = await runCheckpoint(new DownloadStore(db), {
      path,
      upload: endpoint === null ? null : { endpoint, key, policy: UPLOAD_POLICY },
    });
    const report: ExportReport = {
      parquet: { path, rows: result.rows },
      upload: result.upload === null ? null : { key, ...result.upload },
    };
    output.out(flags.json === true ? `${JSON.stringify(report)}\n` : formatExport(report));
    return result.upload?.ok === false ? EXIT.someFailed : EXIT.ok;
  } finally {
    db.close();
  }
}

/** The report for people, ending with a newline. */
export function formatExport(report: ExportReport): string {
  const lines = [`parquet: ${report.parquet.path} (${report.parquet.rows} rows)`];
  if (report.upload !== null) lines.push(formatUpload(report.upload));
  return lines.join("\n") + "\n";
}

/** Adds the `export` subcommand to `program`; `run` receives its exit code. */
export function registerExportCommand(
  program: Command,
  run: (code: Promise<number>) => void,
): void {
  program.command("export")
    .description(
      "write the Parquet manifest of a database, and upload it if asked, without ingesting",
    )
    .helpOption("-h, --help", "show this help and exit")
    .requiredOption("--db <file>", "SQLite database of results")
    .requiredOption("--out <stem>", "Parquet manifest stem: <stem>.parquet")
    .option("--upload", "also upload it through the worker to <key-prefix>/<stem>.parquet")
    .addOption(
      new Option("--worker-url <url>", "base URL of the ingestor worker")
        .default(DEFAULT_WORKER_URL).argParser(httpUrl),
    )
    .addOption(
      new Option("--auth-token <token>", "bearer token for the worker (with --upload)")
        .env(TOKEN_ENV),
    )
    .option("--key-prefix <prefix>", "S3 key prefix to upload the manifest under", "")
    .option("--json", "print the result as one JSON object on stdout")
    .action((flags: ExportFlags) => {
      run(exportAction(flags));
    });
}
