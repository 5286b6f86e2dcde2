// The seven openFDA device endpoints this example mirrors, with their natural keys, TTL tiers and trigram
// paths: pgshift's OPENFDA_DEVICE_ENDPOINTS (src/mirror/endpoints.ts), listed here for the reader.
import { OPENFDA_DEVICE_ENDPOINTS } from "../../src/mirror/endpoints.ts";

export const endpoints = OPENFDA_DEVICE_ENDPOINTS;
// 510k           /k_number                         TTL 7 d   trigram /device_name
// classification /product_code                     TTL 30 d  trigram /device_name
// event          /mdr_report_key                   TTL 1 d
// recall         /product_res_number               TTL 1 d   trigram /reason_for_recall
// enforcement    /recall_number + /product_type    TTL 1 d   trigram /reason_for_recall
// pma            /pma_number + /supplement_number  TTL 7 d   trigram /trade_name ("" for originals)
// udi            /public_device_record_key         TTL 7 d   trigram /brand_name
// Every table also gets a GIN (jsonb_path_ops) index on doc for containment and path queries.
