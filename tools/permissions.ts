/**
 * The permissions the tool runs with: the one list `deno task compile` bakes into the binary and
 * the end-to-end tests run the CLI under, so a feature that needs more fails the tests first.
 *
 * - net: the worker URL is the operator's choice (and `serve` listens).
 * - read, write: the URL list, the database and the manifest are wherever the operator says.
 * - env: only the token. `NO_COLOR` is read through `Deno.noColor`, which needs no permission;
 *   commander's own colour test (which reads more variables) is switched off in lib/cli.ts.
 * - sys, only setPriority: the thread that commits and checkpoints runs at a lower priority than
 *   dispatch (lib/checkpoint_worker.ts). Without it the tool works the same, at equal priority.
 *
 * No --allow-run, --allow-ffi: nothing needs them.
 *
 * @module
 */

/**
 * V8 settings the tool runs with: a small young generation keeps a million-URL run's resident
 * memory low, and the old-generation cap makes a runaway fail instead of swapping.
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=8,--max-old-space-size=1024";

/** The permission flags, as `deno run` and `deno compile` take them. */
export const PERMISSION_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env=D4C_INGESTOR_AUTH_TOKEN",
  "--allow-sys=setPriority",
];
