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
import { EXIT, type Output } from "./run_ingest.ts";

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
  const onSignal = (name: "SIGINT" | "SIGTERM") => () => {
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
  const handlers = listenForSignals(onSignal);
  try {
    const code = await Promise.race([server.finished.then(() => EXIT.ok), forced]);
    if (code === EXIT.ok) output.err("stopped\n");
    return code;
  } finally {
    unlistenForSignals(handlers);
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

type SignalHandlers = [Deno.Signal, () => void][];

function listenForSignals(handler: (name: "SIGINT" | "SIGTERM") => () => void): SignalHandlers {
  const handlers: SignalHandlers = [];
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    const listener = handler(name);
    try {
      Deno.addSignalListener(name, listener);
      handlers.push([name, listener]);
    } catch {
      // Windows has no SIGTERM listener; SIGINT (Ctrl-C) still works there.
    }
  }
  return handlers;
}

function unlistenForSignals(handlers: SignalHandlers): void {
  for (const [name, listener] of handlers) Deno.removeSignalListener(name, listener);
}
