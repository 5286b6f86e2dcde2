import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A started HTTP server: where it listens, and how to stop it (open keep-alive connections included). */
export interface HttpListener {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Writes a JSON body (a string body is sent as it is), never cached. */
export function send(
  response: ServerResponse,
  status: number,
  body: unknown,
  type = "application/json",
): void {
  const text = typeof body === "string" ? body : `${JSON.stringify(body, null, 2)}\n`;
  response.writeHead(status, { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" });
  response.end(text);
}

/**
 * Serves `handle` on node:http (port 0: any free port; host default 127.0.0.1). A handler that throws
 * answers 500 with the message, or ends the connection when the answer had already started.
 */
export async function listen(
  handle: (request: IncomingMessage, response: ServerResponse) => Promise<void>,
  options: { port?: number; host?: string },
): Promise<HttpListener> {
  const server = createServer((request, response) => {
    handle(request, response).catch((error) => {
      if (!response.headersSent)
        send(response, 500, { error: error instanceof Error ? error.message : String(error) });
      else response.destroy();
    });
  });
  server.listen(options.port ?? 0, options.host ?? "127.0.0.1");
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
