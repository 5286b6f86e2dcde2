// s3rver ships no type declarations; these cover what test/helpers/s3-server.ts uses.
declare module "s3rver" {
  import type { Server } from "node:http";
  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
    key?: Buffer;
    cert?: Buffer;
    configureBuckets?: { name: string }[];
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
    httpServer: Server;
  }
}

declare module "s3rver/lib/models/account.js" {
  export default class AWSAccount {
    constructor(id: number, displayName: string);
    createKeyPair(accessKeyId: string, secretAccessKey: string): void;
  }
}
