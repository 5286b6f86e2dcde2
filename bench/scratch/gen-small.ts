import { generateSmallDocuments } from "../generate-documents.ts";
const d = await generateSmallDocuments({ path: "/tmp/rf/small.ndjson", count: 170000 });
console.log(d.count, d.ndjsonBytes);
