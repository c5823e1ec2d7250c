/**
 * Runs the CLI as a subprocess, the way an operator does.
 *
 * @module
 */

import { PERMISSION_FLAGS } from "../../tools/permissions.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** What a CLI run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link runCli}. */
export interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  /** Instead of the binary's permissions (an operator who installed with fewer). */
  permissions?: readonly string[];
}

/** Runs `deno run main.ts ...args` to completion. */
export async function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/**
 * Starts `deno run main.ts ...args` with piped stdio and returns the child. It runs with the
 * permissions the compiled binary has, not `-A`, so a feature needing more fails here first.
 */
export function spawnCli(args: string[], options: RunOptions = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.permissions ?? PERMISSION_FLAGS), MAIN, ...args],
    env: { NO_COLOR: "1", ...options.env },
    clearEnv: false,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
