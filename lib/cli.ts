/**
 * The command line: flags named and defaulted as the Python original's, parsed with commander.
 * Errors become one line on stderr and exit code 2.
 *
 * @module
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import denoJson from "../deno.json" with { type: "json" };
import { messageOf, UsageError } from "./errors.ts";
import { EXIT, runIngest } from "./run_ingest.ts";
import { registerServeCommand } from "./serve.ts";
import type { KeyCollisionMode } from "./work_set.ts";
import { processOutput } from "./stdio.ts";
import { registerStatusCommand } from "./status_command.ts";
import { registerExportCommand } from "./export_command.ts";
import { DEFAULT_WORKER_URL, httpUrl, requireToken, TOKEN_ENV } from "./cli_options.ts";

export { DEFAULT_WORKER_URL, TOKEN_ENV };

function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected a whole number ≥ ${min}, got "${value}"`);
    }
    return n;
  };
}

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a number of seconds ≥ 0, got "${value}"`);
  }
  return n;
}

function positiveSeconds(value: string): number {
  const n = seconds(value);
  if (n === 0) throw new InvalidArgumentError(`expected a number of seconds > 0, got "${value}"`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  }
  return n;
}

interface IngestFlags {
  urls: string;
  datasetId: string;
  workerUrl: string;
  authToken?: string;
  db: string;
  keyPrefix: string;
  out: string;
  concurrency: number;
  timeout: number;
  maxRetries: number;
  retryDelay: number;
  retryMaxDelay: number;
  resume: boolean;
  forceRefresh: boolean;
  grace: number;
  onKeyCollision: KeyCollisionMode;
  logInterval: number;
  dryRun?: true;
  rate?: number;
  quiet?: true;
  json?: true;
  replaceParquet: boolean;
}

/** The commander program; `run` receives the exit code of whichever command ran. */
export function buildProgram(run: (code: Promise<number>) => void): Command {
  const program = new Command("d4c-http-ingestor")
    .description(
      "Archive every URL of a list through the Data for Canada ingestor worker, recording each " +
        "result in SQLite and a Parquet manifest.",
    )
    .version(denoJson.version, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show this help and exit")
    .showSuggestionAfterError(false)
    .requiredOption("--urls <file>", "newline-delimited file of URLs to ingest; - reads stdin")
    .requiredOption("--dataset-id <id>", "logical dataset identifier (User-Agent and DB rows)")
    .addOption(
      new Option("--worker-url <url>", "base URL of the ingestor worker")
        .default(DEFAULT_WORKER_URL).argParser(httpUrl),
    )
    .addOption(
      new Option("--auth-token <token>", "bearer token for the worker").env(TOKEN_ENV),
    )
    .requiredOption("--db <file>", "SQLite database of results (created if missing)")
    .option("--key-prefix <prefix>", "S3 key prefix the worker stores objects under", "")
    .requiredOption("--out <stem>", "Parquet manifest stem: <stem>.parquet")
    .option("--concurrency <n>", "worker requests in flight at once", integer(1), 12)
    .option("--timeout <seconds>", "limit for each worker request", positiveSeconds, 600)
    .option("--max-retries <n>", "retries of a failed URL after its first attempt", integer(0), 3)
    .option(
      "--retry-delay <seconds>",
      "delay before the first retry, doubled each time",
      seconds,
      2,
    )
    .option("--retry-max-delay <seconds>", "ceiling of the retry delay", seconds, 60)
    .option("--resume", "skip URLs already recorded as success", true)
    .option("--no-resume", "send every URL again, even those already recorded as success")
    .option("--force-refresh", "re-process every URL whatever the database says", false)
    .option("--grace <seconds>", "on Ctrl-C, how long in-flight requests may finish", seconds, 30)
    .addOption(
      new Option(
        "--on-key-collision <mode>",
        "when URLs share an object key: refuse to start, " +
          "skip all but the first, or allow overwrites",
      )
        .choices(["refuse", "skip", "allow"]).default("refuse"),
    )
    .option(
      "--log-interval <seconds>",
      "seconds between progress lines when output is not a terminal",
      positiveSeconds,
      10,
    )
    .option("--quiet", "print only errors and the final summary")
    .option("--json", "print the summary as one JSON object on stdout")
    .option(
      "--dry-run",
      "report what would be sent, then stop: nothing is sent or recorded",
    )
    .option(
      "--rate <n>",
      "most worker requests started per second, retries included (default: no cap)",
      positiveNumber,
    )
    .option(
      "--replace-parquet",
      "overwrite <out>.parquet with this database's rows instead of merging into it " +
        "(needed when it is unreadable)",
      false,
    )
    .enablePositionalOptions()
    // Commander checks the mandatory options of a subcommand's ancestors too: the ingest run's
    // required flags are not required of the subcommands.
    .hook("preSubcommand", (command) => {
      for (const option of command.options) option.mandatory = false;
    })
    .action((flags: IngestFlags) => {
      run(ingestAction(flags));
    });
  registerStatusCommand(program, run);
  registerExportCommand(program, run);
  registerServeCommand(program, run);
  return program;
}

async function ingestAction(flags: IngestFlags): Promise<number> {
  return await runIngest({
    urls: flags.urls,
    datasetId: flags.datasetId,
    workerUrl: flags.workerUrl,
    authToken: flags.dryRun ? flags.authToken ?? "" : requireToken(flags.authToken),
    db: flags.db,
    keyPrefix: flags.keyPrefix,
    out: flags.out,
    concurrency: flags.concurrency,
    timeoutSeconds: flags.timeout,
    policy: {
      maxRetries: flags.maxRetries,
      baseDelayMs: flags.retryDelay * 1000,
      maxDelayMs: flags.retryMaxDelay * 1000,
    },
    resume: flags.resume && !flags.forceRefresh,
    forceRefresh: flags.forceRefresh,
    graceSeconds: flags.grace,
    onKeyCollision: flags.onKeyCollision,
    logIntervalSeconds: flags.logInterval,
    dryRun: flags.dryRun === true,
    rate: flags.rate ?? null,
    quiet: flags.quiet === true,
    json: flags.json === true,
    replaceParquet: flags.replaceParquet,
  }, processOutput());
}

/** Parses `args` and runs the command they name; returns the process exit code. */
export async function runCli(args: string[]): Promise<number> {
  let result: Promise<number> | null = null;
  const program = buildProgram((code) => {
    result = code;
  });
  // Subcommands are registered before these settings, so each gets them explicitly. Help is
  // never coloured: commander's own colour test reads environment variables the compiled
  // binary may not read.
  for (const command of [program, ...program.commands]) {
    command.exitOverride().configureOutput({
      writeErr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
      outputError: (text, write) => write(`d4c-http-ingestor: ${text.replace(/^error: /, "")}`),
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    });
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return result === null ? EXIT.ok : await result;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      console.error(`d4c-http-ingestor: ${error.message}`);
      return EXIT.usage;
    }
    // A failure of the machine (disk full, database locked by another process) or a bug: one line
    // still, and what was committed before it stays committed.
    console.error(`d4c-http-ingestor: stopped by an unexpected error: ${messageOf(error)}`);
    return EXIT.someFailed;
  }
}
