/**
 * A CLI subprocess watched while it runs, so a test can wait for a line it prints (a promise,
 * never a sleep) before sending it a signal.
 *
 * @module
 */

import { type CliResult, type RunOptions, spawnCli } from "./cli.ts";

/** A running CLI. */
export interface LiveCli {
  /** The process id. */
  pid: number;
  /** Sends `signal` to the process. */
  kill(signal: Deno.Signal): void;
  /** Resolves once stderr printed so far matches `pattern`; rejects if it exits first. */
  waitForStderr(pattern: RegExp): Promise<void>;
  /** What the run printed and its exit code, once it exited and its output is drained. */
  result: Promise<CliResult>;
}

/** Starts `deno run main.ts ...args` and collects its output as it comes. */
export function startCli(args: string[], options: RunOptions = {}): LiveCli {
  const child = spawnCli(args, options);
  let stderr = "";
  const waiters: { pattern: RegExp; resolve: () => void; reject: (error: Error) => void }[] = [];
  const checkWaiters = () => {
    for (const waiter of [...waiters]) {
      if (!waiter.pattern.test(stderr)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const drainErr = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += text;
      checkWaiters();
    }
  })();
  const drainOut = new Response(child.stdout).text();
  const result = (async () => {
    const [{ code }, stdout] = await Promise.all([child.status, drainOut, drainErr]);
    for (const waiter of waiters.splice(0)) {
      waiter.reject(new Error(`exited (${code}) before printing ${waiter.pattern}: ${stderr}`));
    }
    return { code, stdout, stderr };
  })();
  return {
    pid: child.pid,
    kill: (signal) => child.kill(signal),
    waitForStderr: (pattern) => {
      if (pattern.test(stderr)) return Promise.resolve();
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      waiters.push({ pattern, resolve, reject });
      return promise;
    },
    result,
  };
}
