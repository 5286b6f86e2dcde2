import { parentPort, workerData } from "node:worker_threads";
import { DigestComputer } from "./source-digests.ts";

/**
 * The worker thread of SourceDigests: digests the records an import loads while the import goes on,
 * then hands back the 8-byte digests. Messages arrive in load order; sums do not depend on it anyway.
 */
export type DigestWorkerMessage =
  | { type: "lines"; bytes: Uint8Array; starts: Int32Array; ends: Int32Array; keys: string[] }
  | { type: "records"; keys: string[]; texts: string[] }
  | { type: "finish" };

export type DigestWorkerReply =
  { type: "done"; rows: number; digests: Uint8Array; unusable?: string } | { type: "error"; message: string };

const port = parentPort;
const computer = new DigestComputer(Boolean((workerData as { keyed?: boolean } | undefined)?.keyed));
port?.on("message", (message: DigestWorkerMessage) => {
  try {
    if (message.type === "lines") {
      const bytes = Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength);
      for (let i = 0; i < message.keys.length; i++)
        computer.line(message.keys[i]!, bytes, message.starts[i]!, message.ends[i]!);
    } else if (message.type === "records") {
      for (let i = 0; i < message.keys.length; i++)
        computer.record(message.keys[i]!, message.texts[i]!, undefined);
    } else {
      const digests = new Uint8Array(computer.digests.buffer, computer.digests.byteOffset, computer.rows * 8);
      port.postMessage({
        type: "done",
        rows: computer.rows,
        digests,
        ...(computer.unusable ? { unusable: computer.unusable } : {}),
      } satisfies DigestWorkerReply);
    }
  } catch (error) {
    port.postMessage({ type: "error", message: (error as Error).message } satisfies DigestWorkerReply);
  }
});
