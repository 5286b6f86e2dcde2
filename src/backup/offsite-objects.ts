import { createHash } from "node:crypto";
import { createWriteStream, type promises as fsPromises, renameSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { objectKey, type OffsiteConnection } from "./offsite-target.ts";

/**
 * The object operations an off-site copy is made of. Every object carries the sha256 of its content as
 * user metadata (`x-amz-meta-sha256`): S3's ETag is an MD5 only for single-part uploads without KMS, and
 * compatible servers differ in which checksums they support, so the proof is pgshift's own.
 */
export const SHA256_METADATA = "sha256";

/** S3 refuses parts below 5 MiB (except the last). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

export interface RemoteObject {
  /** Relative to the target's prefix. */
  path: string;
  sizeBytes: number;
  lastModified: string | undefined;
}

/** Every object under the target's prefix, by repository-relative path. */
export async function listRemoteObjects(conn: OffsiteConnection): Promise<Map<string, RemoteObject>> {
  const { bucket, prefix } = conn.target;
  const start = prefix ? `${prefix}/` : "";
  const out = new Map<string, RemoteObject>();
  let token: string | undefined;
  do {
    let page;
    try {
      page = await conn.client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          ...(start ? { Prefix: start } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
    } catch (error) {
      throw conn.fail(error, "listing the objects");
    }
    for (const o of page.Contents ?? []) {
      if (!o.Key || !o.Key.startsWith(start)) continue;
      const path = o.Key.slice(start.length);
      out.set(path, {
        path,
        sizeBytes: o.Size ?? 0,
        lastModified: o.LastModified?.toISOString(),
      });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** The sha256 recorded on an object when it was uploaded, or undefined (not written by pgshift). */
export async function recordedSha256(conn: OffsiteConnection, path: string): Promise<string | undefined> {
  try {
    const head = await conn.client.send(
      new HeadObjectCommand({ Bucket: conn.target.bucket, Key: objectKey(conn.target, path) }),
    );
    return head.Metadata?.[SHA256_METADATA];
  } catch (error) {
    throw conn.fail(error, `reading the metadata of ${path}`);
  }
}

async function getBody(conn: OffsiteConnection, path: string): Promise<Readable> {
  try {
    const got = await conn.client.send(
      new GetObjectCommand({ Bucket: conn.target.bucket, Key: objectKey(conn.target, path) }),
    );
    return got.Body as Readable;
  } catch (error) {
    throw conn.fail(error, `reading ${path}`);
  }
}

/** A small object (manifest.json) as text. */
export async function readObjectText(conn: OffsiteConnection, path: string): Promise<string> {
  const body = await getBody(conn, path);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk as Buffer);
  } catch (error) {
    throw conn.fail(error, `reading ${path}`);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Reads an object back and hashes what the server returns (streamed: bounded memory). */
export async function hashRemoteObject(
  conn: OffsiteConnection,
  path: string,
  onBytes: (n: number) => void = () => undefined,
): Promise<string> {
  const body = await getBody(conn, path);
  const hash = createHash("sha256");
  try {
    for await (const chunk of body) {
      hash.update(chunk as Buffer);
      onBytes((chunk as Buffer).length);
    }
  } catch (error) {
    throw conn.fail(error, `reading ${path}`);
  }
  return hash.digest("hex");
}

/**
 * Downloads an object to `destination` through `destination.partial`, hashing on the way; the file
 * takes its final name only when the hash is the one expected, otherwise the partial file is removed.
 * Returns the sha256 of what arrived.
 */
export async function downloadObject(
  conn: OffsiteConnection,
  path: string,
  destination: string,
  expectedSha256: string,
  onBytes: (n: number) => void = () => undefined,
): Promise<string> {
  const partial = `${destination}.partial`;
  const body = await getBody(conn, path);
  const hash = createHash("sha256");
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(body, hasher, createWriteStream(partial, { mode: 0o600 }));
  } catch (error) {
    rmSync(partial, { force: true });
    throw conn.fail(error, `downloading ${path}`);
  }
  const actual = hash.digest("hex");
  if (actual === expectedSha256) renameSync(partial, destination);
  else rmSync(partial, { force: true });
  return actual;
}

async function readPart(file: fsPromises.FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

/**
 * Uploads a local file as the object for `path`, with `sha256` recorded as its metadata: one PUT up to
 * `partBytes`, a multipart upload above (one part in memory at a time). Returns the sha256 of the bytes
 * actually sent (the caller compares it with `sha256`: a file that changed while being read differs) and
 * the number of parts. A failed multipart upload is aborted, so no parts are left behind to pay for.
 */
export async function uploadFile(
  conn: OffsiteConnection,
  local: string,
  path: string,
  sizeBytes: number,
  sha256: string,
  partBytes: number,
  onBytes: (n: number) => void = () => undefined,
): Promise<{ sentSha256: string; parts: number }> {
  const Bucket = conn.target.bucket;
  const Key = objectKey(conn.target, path);
  const Metadata = { [SHA256_METADATA]: sha256 };
  const hash = createHash("sha256");
  const file = await open(local, "r");
  try {
    if (sizeBytes <= partBytes) {
      const body = await readPart(file, 0, sizeBytes);
      hash.update(body);
      try {
        await conn.client.send(
          new PutObjectCommand({ Bucket, Key, Body: body, ContentLength: body.length, Metadata }),
        );
      } catch (error) {
        throw conn.fail(error, `uploading ${path}`);
      }
      onBytes(body.length);
      return { sentSha256: hash.digest("hex"), parts: 1 };
    }
    let uploadId: string | undefined;
    try {
      uploadId = (await conn.client.send(new CreateMultipartUploadCommand({ Bucket, Key, Metadata })))
        .UploadId;
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (let position = 0, number = 1; position < sizeBytes; position += partBytes, number++) {
        const body = await readPart(file, position, Math.min(partBytes, sizeBytes - position));
        if (body.length === 0) break;
        hash.update(body);
        const part = await conn.client.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            PartNumber: number,
            Body: body,
            ContentLength: body.length,
          }),
        );
        parts.push({ PartNumber: number, ETag: part.ETag ?? "" });
        onBytes(body.length);
      }
      await conn.client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      return { sentSha256: hash.digest("hex"), parts: parts.length };
    } catch (error) {
      if (uploadId)
        await conn.client
          .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      throw conn.fail(error, `uploading ${path} (multipart)`);
    }
  } finally {
    await file.close();
  }
}

export async function deleteObject(conn: OffsiteConnection, path: string): Promise<void> {
  try {
    await conn.client.send(
      new DeleteObjectCommand({ Bucket: conn.target.bucket, Key: objectKey(conn.target, path) }),
    );
  } catch (error) {
    throw conn.fail(error, `deleting ${path}`);
  }
}

/** Runs `work` over `items` with at most `jobs` at once, in order of start. */
export async function forEachLimited<T>(
  items: readonly T[],
  jobs: number,
  work: (item: T) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stop()) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, lane));
}
