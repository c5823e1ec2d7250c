/**
 * `deno task bench`: how fast the real CLI archives N URLs against a fake worker at concurrency C.
 *
 * It starts tools/bench_worker.ts in its own process, measures that worker's raw request rate
 * with a minimal keep-alive fetch loop (`ceiling_per_s`), then runs the CLI as a subprocess on a
 * fresh SQLite file with checkpoints on, and prints one JSON line per run. After the run it times
 * `--help` and a resume that finds nothing to do.
 *
 * ```sh
 * deno task bench [--n 20000,1000000] [--c 64] [--latency 0] [--repeat 1] [--keep]
 * ```
 *
 * Figures the CLI alone knows (checkpoints, export times, dispatch rate with and without a
 * checkpoint running, its own peak RSS) come from the file named by `D4C_INGESTOR_BENCH_STATS`
 * (see lib/bench_stats.ts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { BenchStats } from "../lib/bench_stats.ts";
import { exportManifest } from "../lib/checkpoint.ts";
import { DownloadStore, openDatabase } from "../lib/store.ts";
import { PERMISSION_FLAGS, V8_FLAGS } from "./permissions.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** The operator's permissions, and the variable naming the stats file (lib/bench_stats.ts). */
const CLI_PERMISSIONS = PERMISSION_FLAGS.map((flag) =>
  flag.startsWith("--allow-env=") ? `${flag},D4C_INGESTOR_BENCH_STATS` : flag
);
const WORKER = new URL("./bench_worker.ts", import.meta.url).pathname;
const TOKEN = "bench-token";
const CEILING_MS = 2000;
const RSS_POLL_MS = 20;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "20000" },
    c: { type: "string", default: "64" },
    latency: { type: "string", default: "0" },
    repeat: { type: "string", default: "1" },
    keep: { type: "boolean", default: false },
  },
});
const sizes = values.n.split(",").map(Number);
const concurrency = Number(values.c);
const latencyMs = Number(values.latency);
const repeat = Number(values.repeat);
if (
  sizes.some((n) => !Number.isInteger(n) || n < 1) || !(concurrency >= 1) ||
  !Number.isInteger(repeat) || repeat < 1
) {
  console.error(
    "usage: deno task bench [--n 20000[,1000000]] [--c 64] [--latency ms] [--repeat 1] [--keep]",
  );
  Deno.exit(2);
}

/** A realistic orthoimagery tile URL with a file name unique to `i`. */
function tileUrl(i: number): string {
  const easting = 480000 + (i % 1000) * 250;
  const northing = 5450000 + Math.floor(i / 1000) * 250;
  const zone = 10 + Math.floor(i / 250_000);
  return `https://webtransfer.vancouver.ca/opendata/2022sid/utm${zone}/` +
    `ortho_2022_rgb_7cm_E${easting}_N${northing}.tif`;
}

async function writeUrlList(path: string, n: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  const chunk = 10_000;
  for (let start = 0; start < n; start += chunk) {
    const lines = [];
    for (let i = start; i < Math.min(n, start + chunk); i++) lines.push(tileUrl(i));
    const bytes = encoder.encode(lines.join("\n") + "\n");
    for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
  }
  file.close();
}

async function startWorker(): Promise<{ url: string; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", WORKER, "--token", TOKEN, "--latency", String(latencyMs)],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error("bench worker exited before listening");
    text += value;
  }
  reader.releaseLock();
  return { url: JSON.parse(text.split("\n")[0]).url, child };
}

/** Requests per second a bare keep-alive fetch loop gets from the worker at `c` in flight. */
async function measureCeiling(url: string, c: number): Promise<number> {
  const body = JSON.stringify({
    download_url: tileUrl(0),
    user_agent: "Data for Canada - bench",
    key_prefix: "bench",
  });
  const headers = { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` };
  const loop = async (until: number, counter: { n: number }) => {
    while (performance.now() < until) {
      const response = await fetch(url, { method: "POST", headers, body });
      await response.text();
      counter.n++;
    }
  };
  const warm = { n: 0 };
  const warmUntil = performance.now() + 300;
  await Promise.all(Array.from({ length: c }, () => loop(warmUntil, warm)));
  const counted = { n: 0 };
  const started = performance.now();
  await Promise.all(Array.from({ length: c }, () => loop(started + CEILING_MS, counted)));
  return counted.n / ((performance.now() - started) / 1000);
}

/** The largest VmHWM (peak resident set) seen in /proc for `pid`, polled until `done`. */
async function pollPeakRss(pid: number, done: Promise<unknown>): Promise<number> {
  let peakKb = 0;
  let finished = false;
  done.finally(() => finished = true);
  while (!finished) {
    try {
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const match = /VmHWM:\s+(\d+) kB/.exec(status);
      if (match) peakKb = Math.max(peakKb, Number(match[1]));
    } catch {
      break; // the process is gone
    }
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, RSS_POLL_MS))]);
  }
  return peakKb / 1024;
}

interface CliRun {
  code: number;
  wallMs: number;
  peakRssMb: number;
  stdout: string;
  stderr: string;
}

async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...CLI_PERMISSIONS, V8_FLAGS, MAIN, ...args],
    env: { NO_COLOR: "1", D4C_INGESTOR_AUTH_TOKEN: TOKEN, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  const peak = pollPeakRss(child.pid, output);
  const { code, stdout, stderr } = await output;
  const wallMs = performance.now() - started;
  const decoder = new TextDecoder();
  return {
    code,
    wallMs,
    peakRssMb: await peak,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

async function benchOnce(workerUrl: string, n: number): Promise<Record<string, unknown>> {
  const dir = await Deno.makeTempDir({ prefix: "d4c-bench-" });
  try {
    const urls = join(dir, "urls.txt");
    const statsPath = join(dir, "stats.json");
    await writeUrlList(urls, n);
    const args = [
      "--urls",
      urls,
      "--dataset-id",
      "ca-bc_vancouver-2022_orthoimagery",
      "--worker-url",
      workerUrl,
      "--db",
      join(dir, "bench.sqlite"),
      "--key-prefix",
      "dataforcanada/d4c-datapkg-orthoimagery/archive/ca-bc_vancouver-2022_orthoimagery",
      "--out",
      join(dir, "manifest"),
      "--concurrency",
      String(concurrency),
    ];
    const ceiling = await measureCeiling(workerUrl, concurrency);
    const run = await runCli(args, { D4C_INGESTOR_BENCH_STATS: statsPath });
    if (run.code !== 0) {
      throw new Error(`the CLI exited ${run.code}:\n${run.stderr.slice(-2000)}`);
    }
    const stats: BenchStats = JSON.parse(await Deno.readTextFile(statsPath));
    const db = new DatabaseSync(join(dir, "bench.sqlite"), { readOnly: true });
    const committed = (db.prepare("SELECT count(*) AS n FROM downloads WHERE status = 'success'")
      .get() as { n: number }).n;
    db.close();
    const parquetBytes = (await Deno.stat(join(dir, "manifest.parquet"))).size;
    // A whole export from scratch (what the first checkpoint of a resumed run costs).
    const coldDb = openDatabase(join(dir, "bench.sqlite"));
    const coldStarted = performance.now();
    await exportManifest(new DownloadStore(coldDb), join(dir, "cold.parquet"));
    const exportColdMs = performance.now() - coldStarted;
    coldDb.close();

    const resume = await runCli(args);
    const helps = [];
    for (let i = 0; i < 5; i++) helps.push((await runCli(["--help"])).wallMs);

    const urlsPerS = n / (run.wallMs / 1000);
    const during = stats.dispatch.during_checkpoint;
    const between = stats.dispatch.between_checkpoints;
    const rateDuring = during.seconds > 0 ? during.answers / during.seconds : null;
    const rateBetween = between.seconds > 0 ? between.answers / between.seconds : null;
    return {
      n,
      c: concurrency,
      latency_ms: latencyMs,
      wall_s: round(run.wallMs / 1000, 3),
      urls_per_s: Math.round(urlsPerS),
      ceiling_per_s: Math.round(ceiling),
      of_ceiling: round(urlsPerS / ceiling, 2),
      peak_rss_mb: round(Math.max(run.peakRssMb, stats.peak_rss_mb ?? 0)),
      checkpoints: stats.checkpoints,
      export_ms_max: round(stats.export_ms_max),
      export_ms_final: round(stats.export_ms_final),
      export_ms_cold: Math.round(exportColdMs),
      dispatch_per_s_during_checkpoint: rateDuring === null ? null : Math.round(rateDuring),
      dispatch_per_s_between_checkpoints: rateBetween === null ? null : Math.round(rateBetween),
      dispatch_ratio: rateDuring === null || rateBetween === null
        ? null
        : round(rateDuring / rateBetween, 2),
      committed,
      parquet_rows: stats.parquet_rows,
      parquet_mb: round(parquetBytes / 2 ** 20, 2),
      help_ms: Math.round(median(helps)),
      resume_nothing_to_do_ms: Math.round(resume.wallMs),
      resume_said_nothing_to_do: resume.code === 0 && /nothing to do/.test(resume.stdout),
    };
  } finally {
    if (values.keep) console.error(`kept ${dir}`);
    else await Deno.remove(dir, { recursive: true });
  }
}

const worker = await startWorker();
try {
  for (const n of sizes) {
    for (let run = 0; run < repeat; run++) {
      console.log(JSON.stringify(await benchOnce(worker.url, n)));
    }
  }
} finally {
  worker.child.kill("SIGTERM");
  await worker.child.status;
}
