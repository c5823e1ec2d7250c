/**
 * Reading the operator's URL list: newline-delimited UTF-8 text, streamed so a list of millions of
 * URLs never sits in memory as one string.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

const BOM = "\uFEFF";

/** Why `entry` cannot be sent to the worker, or `null` when it is an absolute http(s) URL. */
export function invalidUrlReason(entry: string): string | null {
  if (!URL.canParse(entry)) return "not an absolute URL";
  const { protocol } = new URL(entry);
  if (protocol !== "http:" && protocol !== "https:") {
    return `unsupported scheme "${protocol.slice(0, -1)}" (only http and https are sent)`;
  }
  return null;
}

/**
 * The entry a line of a URL list holds, or `null` for none: the line trimmed (so CRLF ends are
 * fine), without a comment — a line starting with `#`, or whitespace then `#` and the rest of the
 * line (URLs hold no raw whitespace, so `URL  # note`, as `status --failed` prints, is the URL).
 */
export function entryOfLine(line: string): string | null {
  const entry = line.replace(/(^|\s)#.*$/s, "").trim();
  return entry === "" ? null : entry;
}

/**
 * The entries of a URL list, in order (see {@link entryOfLine}), a leading UTF-8 BOM dropped.
 * `source` names the list in errors.
 *
 * @throws {UsageError} when the bytes are not UTF-8 text (a NUL byte or an invalid sequence).
 */
export async function* readUrlEntries(
  stream: ReadableStream<Uint8Array>,
  source: string,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let pending = "";
  let first = true;
  const notText = () => new UsageError(`${source} is not a text file of URLs (binary content)`);
  for await (const chunk of stream) {
    if (chunk.includes(0)) throw notText();
    try {
      pending += decoder.decode(chunk, { stream: true });
    } catch {
      throw notText();
    }
    if (first && pending.length > 0) {
      if (pending.startsWith(BOM)) pending = pending.slice(1);
      first = false;
    }
    let start = 0;
    for (let end = pending.indexOf("\n"); end !== -1; end = pending.indexOf("\n", start)) {
      const entry = entryOfLine(pending.slice(start, end));
      start = end + 1;
      if (entry !== null) yield entry;
    }
    pending = pending.slice(start);
  }
  try {
    pending += decoder.decode();
  } catch {
    throw notText();
  }
  const last = entryOfLine(pending);
  if (last !== null) yield last;
}

/**
 * Opens the URL list at `path` (`-` for stdin) as a byte stream.
 *
 * @throws {UsageError} when the path is missing, a directory, or unreadable.
 */
export async function openUrlList(path: string): Promise<ReadableStream<Uint8Array>> {
  if (path === "-") return Deno.stdin.readable;
  try {
    const info = await Deno.stat(path);
    if (info.isDirectory) throw new UsageError(`--urls ${path} is a directory, not a file of URLs`);
    return (await Deno.open(path, { read: true })).readable;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (error instanceof Deno.errors.NotFound) throw new UsageError(`--urls ${path}: no such file`);
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`--urls ${path}: permission denied`);
    }
    throw new UsageError(`--urls ${path}: ${(error as Error).message}`);
  }
}
