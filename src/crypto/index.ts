export * from "./blind-index.ts";
export * from "./crypto-errors.ts";
export { DocumentSealer, type FieldEncryptionOptions, type SealedPath } from "./document-sealer.ts";
export { type EncryptedTableInfo, encryptionPart, readEncryptedTable } from "./encryption-registry.ts";
export { decryptValue, ENVELOPE_MARK, type Envelope, encryptText, isEnvelope } from "./field-cipher.ts";
export * from "./keyring.ts";
export * from "./record-mac.ts";
export * from "./rotate-keys.ts";
export * from "./verify-integrity.ts";
