import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { runCli } from "./support/cli.ts";
import { type FakeWorkerOptions, startFakeWorker } from "./support/fake_worker.ts";
import { exists, type Fixture, fixture, readManifest, urlList } from "./support/fixture.ts";

const TOKEN = `tok-${crypto.randomUUID()}-SECRET`;
const ENV = "D4C_INGESTOR_AUTH_TOKEN";

/** The fixture's flags with the token taken from the environment instead of `--auth-token`. */
function argsWithoutToken(files: Fixture, url: string, extra: string[]): string[] {
  const args = files.args({ url, token: "" } as never, extra);
  const at = args.indexOf("--auth-token");
  args.splice(at, 2);
  return args;
}

/** Everything a run left: its output, every DB row, the DB and manifest bytes, decoded rows. */
async function everything(files: Fixture, stdout: string, stderr: string): Promise<string[]> {
  const found = [stdout, stderr];
  for (const entry of Deno.readDirSync(files.dir)) {
    const bytes = await Deno.readFile(`${files.dir}/${entry.name}`);
    found.push(new TextDecoder("latin1").decode(bytes));
  }
  if (await exists(files.db)) {
    const db = new DatabaseSync(files.db);
    found.push(JSON.stringify(db.prepare("SELECT * FROM downloads").all()));
    db.close();
    found.push(new TextDecoder("latin1").decode(await Deno.readFile(files.db)));
  }
  if (await exists(`${files.out}.parquet`)) {
    found.push(
      JSON.stringify(
        (await readManifest(`${files.out}.parquet`)).rows,
        (_, v) => typeof v === "bigint" ? String(v) : v,
      ),
    );
  }
  return found;
}

const RUNS: Record<string, { worker: FakeWorkerOptions; code: number; flags?: string[] }> = {
  "success": { worker: {}, code: 0 },
  "failures": {
    worker: {
      script: (url, attempt) =>
        url.endsWith("0.zip")
          ? { status: 502, body: { error: "Source returned HTTP 404" } }
          : attempt === 1
          ? { status: 500, body: "<html>oops</html>" }
          : { status: 403, body: { error: "forbidden" } },
    },
    code: 1,
  },
  "rejected token": { worker: { token: "some-other-token" }, code: 2 },
  "revoked mid-run": { worker: { revokeTokenAfterPosts: 1 }, code: 2 },
  "timeout": { worker: { script: () => ({ hang: true }) }, code: 1, flags: ["--timeout", "0.3"] },
  "worker echoing the request": {
    worker: {
      script: (_, attempt) =>
        attempt === 1
          ? { status: 500, body: `<pre>Authorization: Bearer ${TOKEN}</pre>` }
          : { status: 400, body: { error: `bad request from Bearer ${TOKEN}` } },
    },
    code: 1,
  },
};

for (const [name, run] of Object.entries(RUNS)) {
  Deno.test(`the token appears nowhere after a run: ${name}`, async () => {
    const worker = startFakeWorker({ token: TOKEN, ...run.worker });
    await using files = await fixture(urlList(3));
    try {
      const args = argsWithoutToken(files, worker.url, ["--max-retries", "1", ...run.flags ?? []]);
      const result = await runCli(args, { env: { [ENV]: TOKEN } });
      assert.equal(result.code, run.code, result.stderr);
      assert.ok(worker.requests.length > 0, "the worker was asked");
      for (const request of worker.requests) {
        assert.equal(request.headers.get("Authorization"), `Bearer ${TOKEN}`);
      }
      for (const text of await everything(files, result.stdout, result.stderr)) {
        assert.ok(!text.includes(TOKEN), `token leaked: ${text.slice(0, 300)}`);
      }
    } finally {
      await worker.close();
    }
  });
}

Deno.test("the token given as a flag is not echoed either", async () => {
  const worker = startFakeWorker({ token: "the-right-one" });
  await using files = await fixture(urlList(2));
  try {
    const result = await runCli(files.args(worker, ["--auth-token", TOKEN]));
    assert.equal(result.code, 2);
    for (const text of await everything(files, result.stdout, result.stderr)) {
      assert.ok(!text.includes(TOKEN));
    }
  } finally {
    await worker.close();
  }
});

Deno.test("--help names the environment variable, never its value", async () => {
  const result = await runCli(["--help"], { env: { [ENV]: TOKEN } });
  assert.equal(result.code, 0);
  assert.ok(result.stdout.includes(ENV), result.stdout);
  assert.ok(!result.stdout.includes(TOKEN) && !result.stderr.includes(TOKEN));
});

Deno.test("a usage error with the token in the environment does not print it", async () => {
  const result = await runCli(["--dataset-id", "x"], { env: { [ENV]: TOKEN } });
  assert.equal(result.code, 2);
  assert.ok(!result.stdout.includes(TOKEN) && !result.stderr.includes(TOKEN), result.stderr);
});
