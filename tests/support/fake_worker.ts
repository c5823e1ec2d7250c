/**
 * A loopback stand-in for the ingestor worker: answers as the contract says, records every
 * request, and plays scripted answers per download URL and attempt so tests can inject faults.
 *
 * @module
 */

import { objectKey } from "../../lib/object_key.ts";

/** A request the fake worker received. */
export interface RecordedRequest {
  method: string;
  headers: Headers;
  body: string;
  /** The POST body's `download_url`, if any. */
  downloadUrl: string | null;
  /** Requests in flight when this one arrived, itself included. */
  inFlightOnArrival: number;
  /** Milliseconds since the fake worker started. */
  receivedAt: number;
}

/** A scripted answer. */
export interface FakeAnswer {
  status?: number;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Never answer (the client must time out or abort). */
  hang?: boolean;
  /** Send headers, then break the body stream. */
  breakBody?: boolean;
}

/** Decides the answer to a POST, or `undefined` for the default success. */
export type Script = (downloadUrl: string, attempt: number) => FakeAnswer | undefined;

/** Options for {@link startFakeWorker}. */
export interface FakeWorkerOptions {
  token?: string;
  script?: Script;
  /** Hold the first POSTs until this many are in flight at once, then release them all. */
  holdUntilInFlight?: number;
}

/** A running fake worker. */
export interface FakeWorker {
  url: string;
  token: string;
  requests: RecordedRequest[];
  /** The most requests ever in flight at once. */
  maxInFlight: number;
  /** POST bodies' download URLs, in arrival order. */
  posts(): string[];
  /** PUT requests. */
  puts(): RecordedRequest[];
  close(): Promise<void>;
}

/** The success JSON the deployed worker sends for `downloadUrl` under `keyPrefix`. */
export function successBody(downloadUrl: string, keyPrefix: string): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    ok: true,
    bucket: "fake-bucket",
    key: objectKey(keyPrefix, downloadUrl),
    content_type: "application/zip",
    size_bytes: 1000 + downloadUrl.length,
    etag: `${hexOf(downloadUrl)}-1`,
    multipart_part_size: 5242880,
    multipart_number_parts: 1,
    started_at: now,
    finished_at: now,
  };
}

function hexOf(text: string): string {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash.toString(16).padStart(8, "0").repeat(4);
}

/** Starts a fake worker on 127.0.0.1 at a free port. */
export function startFakeWorker(options: FakeWorkerOptions = {}): FakeWorker {
  const token = options.token ?? "test-token";
  const requests: RecordedRequest[] = [];
  const attempts = new Map<string, number>();
  const started = performance.now();
  let inFlight = 0;
  let held: (() => void)[] | null = options.holdUntilInFlight ? [] : null;
  const worker: FakeWorker = {
    url: "",
    token,
    requests,
    maxInFlight: 0,
    posts: () => requests.filter((r) => r.method === "POST").flatMap((r) => r.downloadUrl ?? []),
    puts: () => requests.filter((r) => r.method === "PUT"),
    close: async () => {
      for (const release of held ?? []) release();
      await server.shutdown();
    },
  };

  const answer = async (request: Request): Promise<Response> => {
    const body = await request.text();
    let downloadUrl: string | null = null;
    let keyPrefix = "";
    try {
      const json = JSON.parse(body);
      downloadUrl = typeof json.download_url === "string" ? json.download_url : null;
      keyPrefix = typeof json.key_prefix === "string" ? json.key_prefix : "";
    } catch { /* not JSON: answered below */ }
    requests.push({
      method: request.method,
      headers: request.headers,
      body,
      downloadUrl,
      inFlightOnArrival: inFlight,
      receivedAt: performance.now() - started,
    });
    if (request.headers.get("Authorization") !== `Bearer ${token}`) {
      return new Response("Unauthorized", { status: 401 });
    }
    if (request.method === "PUT") {
      if (!request.headers.get("X-S3-Key")) {
        return Response.json({ error: "'X-S3-Key' header is required." }, { status: 400 });
      }
      if (body.length === 0) {
        return Response.json({ error: "Request body is required." }, { status: 400 });
      }
      const now = new Date().toISOString();
      return Response.json({
        ok: true,
        bucket: "fake-bucket",
        key: request.headers.get("X-S3-Key"),
        content_type: request.headers.get("Content-Type") ?? "application/octet-stream",
        size_bytes: body.length,
        multipart_part_size: 5242880,
        multipart_number_parts: 1,
        started_at: now,
        finished_at: now,
      });
    }
    if (request.method !== "POST") {
      return new Response("Method Not Allowed. Use POST or PUT.", { status: 405 });
    }
    if (downloadUrl === null) {
      return Response.json({ error: "'download_url' and 'user_agent' are required." }, {
        status: 400,
      });
    }
    if (held !== null) {
      if (inFlight >= options.holdUntilInFlight!) {
        for (const release of held) release();
        held = null;
      } else {
        await new Promise<void>((resolve) => held!.push(resolve));
      }
    }
    const attempt = (attempts.get(downloadUrl) ?? 0) + 1;
    attempts.set(downloadUrl, attempt);
    const scripted = options.script?.(downloadUrl, attempt);
    if (scripted === undefined) return Response.json(successBody(downloadUrl, keyPrefix));
    if (scripted.hang) await new Promise(() => {});
    if (scripted.delayMs) await new Promise((r) => setTimeout(r, scripted.delayMs));
    const headers = new Headers(scripted.headers);
    const text = typeof scripted.body === "string"
      ? scripted.body
      : JSON.stringify(scripted.body ?? successBody(downloadUrl, keyPrefix));
    if (scripted.breakBody) {
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text.slice(0, 5)));
          controller.error(new Error("connection reset"));
        },
      });
      return new Response(stream, { status: scripted.status ?? 200, headers });
    }
    return new Response(text, { status: scripted.status ?? 200, headers });
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      inFlight++;
      worker.maxInFlight = Math.max(worker.maxInFlight, inFlight);
      try {
        return await answer(request);
      } finally {
        inFlight--;
      }
    },
  );
  worker.url = `http://127.0.0.1:${server.addr.port}/`;
  return worker;
}
