import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { runCli } from "./support/cli.ts";

const REQUIRED = ["--urls", "u.txt", "--dataset-id", "d", "--db", "x.sqlite", "--out", "x"];

/** Each option of `--help` output mapped to its whole description, wrapped lines joined. */
function helpEntries(help: string): Map<string, string> {
  const entries = new Map<string, string>();
  let current: string | null = null;
  for (const line of help.split("\n")) {
    const option = /^ {2}(?:-\w, )?(--[\w-]+)(.*)$/.exec(line);
    if (option !== null) {
      current = option[1];
      entries.set(current, option[2].trim());
    } else if (current !== null && /^ {10,}\S/.test(line)) {
      entries.set(current, `${entries.get(current)} ${line.trim()}`);
    } else {
      current = null;
    }
  }
  return entries;
}

Deno.test("--help lists every seed flag with its default", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  const entries = helpEntries(help.stdout);
  const expectations: [string, string][] = [
    ["--urls", "<file>"],
    ["--dataset-id", "<id>"],
    ["--worker-url", '(default: "https://cf-data-ingestor.labs.dataforcanada.org/")'],
    ["--auth-token", "(env: D4C_INGESTOR_AUTH_TOKEN)"],
    ["--db", "<file>"],
    ["--key-prefix", '(default: "")'],
    ["--out", "<stem>"],
    ["--concurrency", "(default: 12)"],
    ["--timeout", "(default: 600)"],
    ["--max-retries", "(default: 3)"],
    ["--resume", "(default: true)"],
    ["--no-resume", "send every URL again"],
    ["--force-refresh", "(default: false)"],
    ["--retry-delay", "(default: 2)"],
    ["--retry-max-delay", "(default: 60)"],
  ];
  for (const [flag, text] of expectations) {
    assert.ok(entries.get(flag)?.includes(text), `${flag}: ${entries.get(flag)}`);
  }
});

Deno.test("--version prints the package version", async () => {
  const run = await runCli(["--version"]);
  assert.equal(run.code, 0);
  assert.equal(run.stdout.trim(), denoJson.version);
});

Deno.test("a missing required flag is one line and exit 2", async () => {
  const run = await runCli(["--urls", "u.txt", "--db", "x.sqlite", "--out", "x"]);
  assert.equal(run.code, 2);
  assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
  assert.match(run.stderr, /--dataset-id/);
});

Deno.test("a missing token is one line naming the environment variable, and exit 2", async () => {
  const run = await runCli(REQUIRED, { env: { D4C_INGESTOR_AUTH_TOKEN: "" } });
  assert.equal(run.code, 2);
  assert.equal(
    run.stderr.trim(),
    "d4c-http-ingestor: no worker token: pass --auth-token or set D4C_INGESTOR_AUTH_TOKEN",
  );
});

Deno.test("a malformed number is one line and exit 2", async () => {
  for (const args of [["--concurrency", "0"], ["--max-retries", "-1"], ["--timeout", "soon"]]) {
    const run = await runCli([...REQUIRED, ...args], { env: { D4C_INGESTOR_AUTH_TOKEN: "t" } });
    assert.equal(run.code, 2, args.join(" "));
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, new RegExp(args[0]));
  }
});
