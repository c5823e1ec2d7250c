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
  // The Web Workers are loaded by URL at run time, so they must be named to be embedded.
  args: [
    "compile",
    ...PERMISSION_FLAGS,
    V8_FLAGS,
    "--include",
    "lib/checkpoint_worker.ts",
    "--include",
    "lib/group_encoder_worker.ts",
    ...args,
    "main.ts",
  ],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
});
Deno.exit((await command.output()).code);
