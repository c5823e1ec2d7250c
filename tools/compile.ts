/**
 * `deno task compile [--target <triple>] [--output <path>]`: builds the standalone binary with
 * exactly the permissions of tools/permissions.ts, never `-A`.
 *
 * @module
 */

import { PERMISSION_FLAGS, V8_FLAGS } from "./permissions.ts";

const root = new URL("../", import.meta.url).pathname;
const args = [...Deno.args];
if (!args.includes("--output")) args.push("--output", "dist/d4c-http-ingestor");
const command = new Deno.Command("deno", {
  // The checkpoint Web Worker is loaded by URL at run time, so it must be named to be embedded.
  args: [
    "compile",
    ...PERMISSION_FLAGS,
    V8_FLAGS,
    "--include",
    "lib/checkpoint_worker.ts",
    ...args,
    "main.ts",
  ],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
});
Deno.exit((await command.output()).code);
