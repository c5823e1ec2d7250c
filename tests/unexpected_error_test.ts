import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { runCli } from "./support/cli.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { fixture, lines, urlList } from "./support/fixture.ts";

Deno.test("a database another process keeps locked stops the run with one line, exit 1", async () => {
  const worker = startFakeWorker();
  await using files = await fixture(urlList(3));
  try {
    assert.equal((await runCli(files.args(worker, ["--max-retries", "0"]))).code, 0);
    await Deno.writeTextFile(files.urlsPath, urlList(6).join("\n"));
    const holder = new DatabaseSync(files.db);
    holder.exec("BEGIN EXCLUSIVE");
    try {
      const result = await runCli(files.args(worker));
      assert.equal(result.code, 1);
      assert.deepEqual(lines(result.stderr), [
        "d4c-http-ingestor: stopped by an unexpected error: commit failed: database is locked",
      ]);
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
  } finally {
    await worker.close();
  }
});
