/**
 * The S3 multipart ETag of a byte stream, computed as the bytes go by: the hex MD5 of the
 * concatenated binary MD5s of its parts, then `-<number of parts>`. Parts are exactly
 * {@link PART_SIZE} bytes (the last one shorter), so the ETag is a pure function of the bytes,
 * whatever the chunking of the stream. An empty stream is one empty part.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";

/** The part size of every multipart upload the worker makes: 5 MiB. */
export const PART_SIZE = 5 * 1024 * 1024;

/** Hashes a stream part by part; feed it with {@link update}, then read {@link digest}. */
export class MultipartEtag {
  readonly #partDigests: Buffer[] = [];
  #part: Hash = createHash("md5");
  #partBytes = 0;
  /** Bytes seen so far. */
  bytes = 0;

  /** Adds the next bytes of the stream. */
  update(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#partBytes === PART_SIZE) this.#closePart();
      const take = Math.min(PART_SIZE - this.#partBytes, chunk.length - offset);
      this.#part.update(chunk.subarray(offset, offset + take));
      this.#partBytes += take;
      offset += take;
    }
    this.bytes += chunk.length;
  }

  #closePart(): void {
    this.#partDigests.push(this.#part.digest());
    this.#part = createHash("md5");
    this.#partBytes = 0;
  }

  /** The ETag (without quotes) and the number of parts; call once, after the last chunk. */
  digest(): { etag: string; parts: number } {
    // The part under way is always closed here, so an empty stream counts as one empty part.
    this.#closePart();
    const parts = this.#partDigests.length;
    const etag = createHash("md5").update(Buffer.concat(this.#partDigests)).digest("hex");
    return { etag: `${etag}-${parts}`, parts };
  }
}
