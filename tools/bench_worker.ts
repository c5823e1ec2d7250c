/**
 * The benchmark's stand-in for the ingestor worker: a loopback server answering every POST with
 * the contract's success JSON (and every PUT with an upload success), as fast as it can or after
 * `--latency` milliseconds. It runs as its own process so it never shares the CLI's event loop,
 * and prints `{"url": …}` on its first stdout line once it listens.
 *
 * ```sh
 * deno run --allow-net tools/bench_worker.ts --token T [--latency 0]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    token: { type: "string", default: "bench-token" },
    latency: { type: "string", default: "0" },
  },
});
const latencyMs = Number(values.latency);
const expectedAuth = `Bearer ${values.token}`;
const unauthorized = () => new Response("Unauthorized", { status: 401 });
const JSON_HEADERS = { "Content-Type": "application/json" };

/** The worker's object name for `url`: its last path segment, `unnamed` if empty. */
function objectName(url: string): string {
  const path = url.replace(/[?#].*$/, "");
  return path.slice(path.lastIndexOf("/") + 1) || "unnamed";
}

function etagOf(url: string): string {
  let a = 0x811c9dc5, b = 0x01000193;
  for (let i = 0; i < url.length; i++) {
    a = Math.imul(a ^ url.charCodeAt(i), 0x01000193) >>> 0;
    b = Math.imul(b ^ url.charCodeAt(i), 0x85ebca6b) >>> 0;
  }
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  return `${hex(a)}${hex(b)}${hex(a ^ b)}${hex(Math.imul(a, b) >>> 0)}-1`;
}

async function answerPost(request: Request): Promise<Response> {
  let body: { download_url?: unknown; key_prefix?: unknown };
  try {
    body = await request.json();
  } catch {
    return new Response("Invalid JSON body", { status: 400 });
  }
  if (typeof body.download_url !== "string") {
    return Response.json({ error: "'download_url' and 'user_agent' are required." }, {
      status: 400,
    });
  }
  const started = new Date().toISOString();
  if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
  const prefix = typeof body.key_prefix === "string" ? body.key_prefix.replace(/\/+$/, "") : "";
  const name = objectName(body.download_url);
  const finished = latencyMs > 0 ? new Date().toISOString() : started;
  return new Response(
    `{"ok":true,"bucket":"bench-bucket","key":${
      JSON.stringify(prefix ? `${prefix}/${name}` : name)
    },` +
      `"content_type":"application/zip","size_bytes":${1000 + body.download_url.length},` +
      `"etag":"${etagOf(body.download_url)}","multipart_part_size":5242880,` +
      `"multipart_number_parts":1,"started_at":"${started}","finished_at":"${finished}"}`,
    { headers: JSON_HEADERS },
  );
}

async function answerPut(request: Request): Promise<Response> {
  const key = request.headers.get("X-S3-Key");
  let size = 0;
  // Counted as it streams in: buffering a large manifest would stall this process's POSTs.
  for await (const chunk of request.body ?? []) size += chunk.length;
  if (key === null) {
    return Response.json({ error: "'X-S3-Key' header is required." }, { status: 400 });
  }
  if (size === 0) return Response.json({ error: "Request body is required." }, { status: 400 });
  const now = new Date().toISOString();
  return Response.json({
    ok: true,
    bucket: "bench-bucket",
    key,
    content_type: request.headers.get("Content-Type") ?? "application/octet-stream",
    size_bytes: size,
    multipart_part_size: 5242880,
    multipart_number_parts: Math.max(1, Math.ceil(size / 5242880)),
    started_at: now,
    finished_at: now,
  });
}

const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
  if (request.headers.get("Authorization") !== expectedAuth) return unauthorized();
  if (request.method === "POST") return answerPost(request);
  if (request.method === "PUT") return answerPut(request);
  return new Response("Method Not Allowed. Use POST or PUT.", { status: 405 });
});
console.log(JSON.stringify({ url: `http://127.0.0.1:${server.addr.port}/` }));
