/**
 * The `serve` command: runs a {@link createLocalWorker local worker} on this machine until
 * SIGINT or SIGTERM, then stops once the requests in flight are answered. Returns the process
 * exit code.
 *
 * @module
 */

import { resolve } from "node:path";
import { UsageError } from "./errors.ts";
import { createLocalWorker } from "./local_worker.ts";
import { type Command, InvalidArgumentError, Option } from "commander";
import { EXIT, type Output } from "./run_ingest.ts";
import { listenForStopSignals, stopListening, type StopSignal } from "./signals.ts";
import { processOutput } from "./stdio.ts";
import { TOKEN_ENV } from "./cli_options.ts";

/** Everything the serve command was told. */
export interface ServeCommandOptions {
  /** Directory the objects are stored under; created if missing. */
  store: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  bucket: string;
  authToken: string;
}

/** Runs the serve command until it is stopped; returns the exit code. */
export async function runServe(
  options: ServeCommandOptions,
  output: Pick<Output, "out" | "err">,
): Promise<number> {
  const store = resolve(options.store);
  await prepareStore(store);
  const worker = createLocalWorker({
    store,
    authToken: options.authToken,
    bucket: options.bucket,
    log: (line) => output.err(`${new Date().toISOString()} ${line}\n`),
  });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: options.host, port: options.port, onListen: () => {} },
      (request) => worker.handle(request),
    );
  } catch (error) {
    throw new UsageError(
      `cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`,
    );
  }
  output.out(
    `listening on ${listenUrl(server.addr)} (store ${store}, bucket ${options.bucket})\n`,
  );

  const { promise: forced, resolve: force } = Promise.withResolvers<number>();
  let stopping = false;
  const onSignal = (name: StopSignal) => () => {
    if (!stopping) {
      stopping = true;
      output.err(
        `${name}: stopping after ${worker.inFlight()} request(s) in flight; ` +
          `send it again to abort them\n`,
      );
      void server.shutdown();
    } else {
      output.err(`${name}: aborting ${worker.inFlight()} request(s) in flight\n`);
      force(name === "SIGINT" ? EXIT.sigint : EXIT.sigterm);
    }
  };
  const listeners = listenForStopSignals(onSignal);
  try {
    const code = await Promise.race([server.finished.then(() => EXIT.ok), forced]);
    if (code === EXIT.ok) output.err("stopped\n");
    return code;
  } finally {
    stopListening(listeners);
    // After a forced stop the process exits with writes still under way: drop their files.
    worker.removePartials();
  }
}

async function prepareStore(store: string): Promise<void> {
  try {
    await Deno.mkdir(store, { recursive: true });
  } catch (error) {
    throw new UsageError(`--store ${store}: ${(error as Error).message.split("\n")[0]}`);
  }
}

/** The URL clients reach a server listening on `addr` at. */
export function listenUrl(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `http://${host}:${addr.port}/`;
}

interface ServeFlags {
  store: string;
  host: string;
  port: number;
  bucket: string;
  authToken?: string;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError(`expected a port number from 0 to 65535, got "${value}"`);
  }
  return n;
}

/** Adds the `serve` subcommand to `program`; `run` receives its exit code. */
export function registerServeCommand(
  program: Command,
  run: (code: Promise<number>) => void,
): void {
  program.command("serve")
    .description("run a local worker: the worker's HTTP contract, storing objects in a directory")
    .helpOption("-h, --help", "show this help and exit")
    .requiredOption("--store <dir>", "directory objects are stored under (created if missing)")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on; 0 picks a free one", port, 8787)
    .option("--bucket <name>", "bucket name reported in answers", "local")
    .addOption(
      new Option("--auth-token <token>", "bearer token clients must send").env(TOKEN_ENV),
    )
    .action((flags: ServeFlags) => {
      run(serveAction(flags));
    });
}

async function serveAction(flags: ServeFlags): Promise<number> {
  if (flags.authToken === undefined || flags.authToken === "") {
    throw new UsageError(`no token for clients: pass --auth-token or set ${TOKEN_ENV}`);
  }
  return await runServe({ ...flags, authToken: flags.authToken }, processOutput());
}
