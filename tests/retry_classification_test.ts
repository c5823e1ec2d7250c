import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { type FakeAnswer, startFakeWorker } from "./support/fake_worker.ts";
import { fixture, rowsByUrl } from "./support/fixture.ts";

const HTML_503 = "<html><head><title>503</title></head><body><h1>503 Service Unavailable</h1>" +
  "<p>cloudflare</p></body></html>";

/** One scripted URL: its answers by attempt (the last repeats), and what must come of it. */
interface Case {
  answers: (FakeAnswer | undefined)[];
  attempts: number;
  status: "success" | "failed";
  httpStatus?: number | null;
  error?: RegExp;
}

const url = (name: string) => `https://source.example.org/${name}/${name}.zip`;
const later = () => new Date(Date.now() + 3_600_000).toUTCString();

/** With --max-retries 3 (four attempts at most) and --timeout 0.5. */
const CASES: Record<string, Case> = {
  "500 then 503 then success": {
    answers: [{ status: 500, body: { error: "boom" } }, { status: 503, body: "busy" }, undefined],
    attempts: 3,
    status: "success",
    httpStatus: 200,
  },
  "502 S3 failure then 504 then success": {
    answers: [{ status: 502, body: { error: "S3 upload failed: SlowDown" } }, {
      status: 504,
      body: { error: "gateway timeout" },
    }, undefined],
    attempts: 3,
    status: "success",
  },
  "408 then 425 then success": {
    answers: [
      { status: 408, body: { error: "slow" } },
      { status: 425, body: { error: "early" } },
      undefined,
    ],
    attempts: 3,
    status: "success",
  },
  "429 with Retry-After seconds": {
    answers: [
      { status: 429, body: { error: "slow down" }, headers: { "Retry-After": "3600" } },
      undefined,
    ],
    attempts: 2,
    status: "success",
  },
  "429 with Retry-After HTTP date": {
    answers: [
      { status: 429, body: "Too Many Requests", headers: { "Retry-After": later() } },
      undefined,
    ],
    attempts: 2,
    status: "success",
  },
  "connection reset mid-body": {
    answers: [{ breakBody: true }, { breakBody: true, status: 502 }, undefined],
    attempts: 3,
    status: "success",
  },
  "hangs past the timeout every time": {
    answers: [{ hang: true }],
    attempts: 4,
    status: "failed",
    httpStatus: null,
    error: /^timed out after 0\.5 s$/,
  },
  "hangs once, then success": {
    answers: [{ hang: true }, undefined],
    attempts: 2,
    status: "success",
  },
  "HTML error page every time": {
    answers: [{ status: 503, body: HTML_503, headers: { "Content-Type": "text/html" } }],
    attempts: 4,
    status: "failed",
    httpStatus: 503,
    error: /^HTTP 503: 503 503 Service Unavailable cloudflare$/,
  },
  "Cloudflare 520 page, then success": {
    answers: [{ status: 520, body: "<html>origin error</html>" }, undefined],
    attempts: 2,
    status: "success",
  },
  "200 with ok:false": {
    answers: [{ status: 200, body: { ok: false, error: "the worker gave up" } }],
    attempts: 1,
    status: "failed",
    httpStatus: 200,
    error: /^the worker gave up$/,
  },
  "source 404 wrapped in 502": {
    answers: [{ status: 502, body: { error: "Source returned HTTP 404" } }],
    attempts: 1,
    status: "failed",
    httpStatus: 502,
    error: /^Source returned HTTP 404$/,
  },
  "source 403 wrapped in 502": {
    answers: [{ status: 502, body: { error: "Source returned HTTP 403" } }],
    attempts: 1,
    status: "failed",
  },
  "source 503 wrapped in 502, then success": {
    answers: [{ status: 502, body: { error: "Source returned HTTP 503" } }, undefined],
    attempts: 2,
    status: "success",
  },
  "source 429 wrapped in 502, then success": {
    answers: [{ status: 502, body: { error: "Source returned HTTP 429" } }, undefined],
    attempts: 2,
    status: "success",
  },
  "500 every time": {
    answers: [{ status: 500, body: { error: "always broken" } }],
    attempts: 4,
    status: "failed",
    httpStatus: 500,
    error: /^always broken$/,
  },
};
for (const status of [400, 403, 404, 405, 413, 415, 422]) {
  CASES[`${status} JSON`] = {
    answers: [{ status, body: { error: `refused with ${status}` } }],
    attempts: 1,
    status: "failed",
    httpStatus: status,
    error: new RegExp(`^refused with ${status}$`),
  };
  CASES[`${status} text`] = {
    answers: [{ status, body: `plain refusal ${status}` }],
    attempts: 1,
    status: "failed",
    httpStatus: status,
    error: new RegExp(`^HTTP ${status}: plain refusal ${status}$`),
  };
}

Deno.test("each failure is retried only when it can heal, and counted at the worker", async (t) => {
  const byUrl = new Map(
    Object.entries(CASES).map(([name, c]) => [url(name.replace(/\W+/g, "-")), {
      name,
      ...c,
    }]),
  );
  const worker = startFakeWorker({
    script: (downloadUrl, attempt) => {
      const answers = byUrl.get(downloadUrl)!.answers;
      return answers[Math.min(attempt, answers.length) - 1];
    },
  });
  await using files = await fixture([...byUrl.keys()]);
  try {
    const result = await runCli(
      files.args(worker, ["--max-retries", "3", "--timeout", "0.5", "--concurrency", "40"]),
    );
    assert.equal(result.code, 1, result.stderr);
    const rows = rowsByUrl(files.db);
    const posts = worker.posts();
    for (const [downloadUrl, expected] of byUrl) {
      await t.step(expected.name, () => {
        const row = rows.get(downloadUrl);
        assert.ok(row, "recorded");
        assert.equal(posts.filter((p) => p === downloadUrl).length, expected.attempts, "attempts");
        assert.equal(row.status, expected.status);
        if (expected.httpStatus !== undefined) assert.equal(row.http_status, expected.httpStatus);
        if (expected.error) assert.match(row.error ?? "", expected.error);
        if (expected.status === "success") assert.equal(row.error, null);
      });
    }
    const failed = [...byUrl.values()].filter((c) => c.status === "failed").length;
    assert.match(
      result.stdout,
      new RegExp(`this run: ${byUrl.size - failed} success, ${failed} failed`),
    );
  } finally {
    await worker.close();
  }
});

Deno.test("--max-retries 0 sends a failing URL once", async () => {
  const worker = startFakeWorker({ script: () => ({ status: 503, body: { error: "busy" } }) });
  await using files = await fixture(["https://source.example.org/a.zip"]);
  try {
    const result = await runCli(files.args(worker, ["--max-retries", "0"]));
    assert.equal(result.code, 1);
    assert.equal(worker.posts().length, 1);
    assert.equal(rowsByUrl(files.db).get("https://source.example.org/a.zip")?.error, "busy");
  } finally {
    await worker.close();
  }
});

Deno.test("a URL that succeeds after retries leaves exit code 0", async () => {
  const worker = startFakeWorker({
    script: (_, attempt) => attempt < 3 ? { status: 502, body: { error: "flaky" } } : undefined,
  });
  await using files = await fixture(["https://source.example.org/a.zip"]);
  try {
    const result = await runCli(files.args(worker, ["--max-retries", "2"]));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(worker.posts().length, 3);
    assert.equal(rowsByUrl(files.db).get("https://source.example.org/a.zip")?.status, "success");
  } finally {
    await worker.close();
  }
});
