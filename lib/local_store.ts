/**
 * A directory used as a bucket: each object key is a relative path under the root. Objects are
 * streamed into a temporary file in the root and renamed into place only once complete, so a
 * failed or interrupted write never leaves a partial object, and a reader never sees one.
 *
 * @module
 */

import { dirname, join, resolve, sep } from "node:path";
import { MultipartEtag } from "./multipart_etag.ts";
import { messageOf } from "./errors.ts";

/** Name prefix of the temporary files in the root while objects are being written. */
export const PARTIAL_PREFIX = ".d4c-partial-";

/** Why `key` cannot name a file inside the root, or `null` when it can. */
export function unsafeKeyReason(key: string): string | null {
  if (key === "") return "the key is empty";
  if (key.includes("\0")) return "the key contains a NUL character";
  if (key.includes("\\")) return "the key contains a backslash";
  if (key.startsWith("/") || /^[A-Za-z]:/.test(key)) return "the key is an absolute path";
  const segments = key.split("/");
  if (segments.some((segment) => segment === "." || segment === "..")) {
    return "the key contains a '.' or '..' path segment";
  }
  if (segments.at(-1) === "") return "the key ends with '/'";
  return null;
}

/** Where a write failed: reading the incoming body, or writing to the disk. */
export type WriteStage = "read" | "write";

/** A failed {@link LocalStore.write}; nothing was stored. */
export class StoreWriteError extends Error {
  /**
   * @param stage whether the body could not be read or the disk could not be written.
   * @param message one line, from the underlying error.
   */
  constructor(readonly stage: WriteStage, message: string) {
    super(message);
    this.name = "StoreWriteError";
  }
}

/** What a completed write stored. */
export interface StoredObject {
  bytes: number;
  /** The S3 multipart ETag of the bytes, 5 MiB parts. */
  etag: string;
  parts: number;
}

/** Objects under one root directory. */
export class LocalStore {
  readonly #root: string;
  readonly #partials = new Set<string>();

  /** @param root an existing directory. */
  constructor(root: string) {
    this.#root = resolve(root);
  }

  /**
   * The file of the object `key`.
   *
   * @throws {RangeError} when the key is unsafe (see {@link unsafeKeyReason}).
   */
  pathOf(key: string): string {
    const reason = unsafeKeyReason(key);
    if (reason !== null) throw new RangeError(reason);
    const path = join(this.#root, ...key.split("/"));
    // Belt and braces: whatever the checks above missed must still land inside the root.
    if (!path.startsWith(this.#root + sep)) throw new RangeError("the key escapes the store");
    return path;
  }

  /**
   * Streams `body` into the object `key`, replacing any object already there, and hashes it on
   * the way. Resolves to `null`, storing nothing, when the body is empty and `allowEmpty` is
   * false.
   *
   * @throws {RangeError} when the key is unsafe, before reading anything.
   * @throws {StoreWriteError} when the body or the disk failed; nothing is stored.
   */
  async write(
    key: string,
    body: ReadableStream<Uint8Array>,
    allowEmpty: boolean,
  ): Promise<StoredObject | null> {
    const path = this.pathOf(key);
    const partial = join(this.#root, `${PARTIAL_PREFIX}${crypto.randomUUID()}`);
    this.#partials.add(partial);
    try {
      const hash = new MultipartEtag();
      const file = await diskStep(() => Deno.open(partial, { write: true, createNew: true }));
      try {
        await copy(body, file, hash);
        await diskStep(() => file.sync());
      } finally {
        file.close();
      }
      if (hash.bytes === 0 && !allowEmpty) {
        await Deno.remove(partial);
        return null;
      }
      await diskStep(async () => {
        await Deno.mkdir(dirname(path), { recursive: true });
        await Deno.rename(partial, path);
      });
      const { etag, parts } = hash.digest();
      return { bytes: hash.bytes, etag, parts };
    } catch (error) {
      await Deno.remove(partial).catch(() => {});
      throw error;
    } finally {
      this.#partials.delete(partial);
    }
  }

  /**
   * Deletes the temporary files of writes under way, synchronously, for a process about to exit
   * without waiting for them.
   */
  removePartials(): void {
    for (const partial of this.#partials) {
      try {
        Deno.removeSync(partial);
      } catch {
        // Already renamed into place or removed by its own write.
      }
    }
  }
}

/**
 * Size of the buffer a byte stream is read into, reused from chunk to chunk. Measured with
 * Deno 2.9: larger views make Deno.serve's request body reads many times slower.
 */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Copies `body` to `file` one chunk at a time. A byte stream (fetch's and Deno.serve's bodies)
 * is read into one reused buffer: fresh chunks would be garbage the collector lets pile up to
 * ~100 MB on a multi-GB body before it frees them.
 */
async function copy(
  body: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  hash: MultipartEtag,
): Promise<void> {
  const reader = byobReader(body) ?? body.getReader();
  let buffer = new ArrayBuffer(READ_BUFFER_BYTES);
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = reader instanceof ReadableStreamBYOBReader
          ? await reader.read(new Uint8Array(buffer))
          : await reader.read();
      } catch (error) {
        throw new StoreWriteError("read", messageOf(error));
      }
      if (next.done) return;
      const chunk = next.value;
      hash.update(chunk);
      writeAll(file, chunk);
      if (reader instanceof ReadableStreamBYOBReader) buffer = chunk.buffer as ArrayBuffer;
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
}

/**
 * Writes synchronously: 64 KiB into the page cache blocks the event loop for microseconds, while
 * awaiting any I/O between two reads of a chunked request body makes Deno 2.9's HTTP server
 * buffer the rest and slow down ever more (measured: a 2 GiB chunked PUT ran for over 10 minutes
 * and reached 1.5 GB of RSS, against 10 s and +28 MB with this).
 */
function writeAll(file: Deno.FsFile, chunk: Uint8Array): void {
  let written = 0;
  try {
    while (written < chunk.length) written += file.writeSync(chunk.subarray(written));
  } catch (error) {
    throw new StoreWriteError("write", messageOf(error));
  }
}

function byobReader(body: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | null {
  try {
    return body.getReader({ mode: "byob" });
  } catch {
    return null; // Not a byte stream.
  }
}

async function diskStep<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw new StoreWriteError("write", messageOf(error));
  }
}
