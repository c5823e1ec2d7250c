/**
 * d4c-http-ingestor: archive every URL of a list through the Data for Canada ingestor worker,
 * recording results in SQLite and a Parquet manifest.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write --allow-env=D4C_INGESTOR_AUTH_TOKEN \
 *   --allow-sys=setPriority \
 *   jsr:@d4c/http-ingestor --urls urls.txt --dataset-id my-data --db my-data.sqlite \
 *   --out my-data --key-prefix archive/my-data
 * ```
 *
 * @module
 */

import { runCli } from "./lib/cli.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
