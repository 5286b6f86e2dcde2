/**
 * pgshift's library entry point: the documented API, nothing internal. Every capability is a function
 * that takes validated options and returns a result object; nothing here prints, reads argv or exits.
 * `pgshift/cutover` is the same cutover API without the importers.
 */
export * from "./cutover/public.ts";

// Importing a SQLite database, and JSON / NDJSON / CSV documents.
export type { ColumnPlan, ImportPlan, TablePlan as ImportTablePlan } from "./schema/plan.ts";
export {
  type IfExists,
  type ImportResult,
  type ImportSqliteOptions,
  type StepResult,
  type TableResult,
  type VerificationOutcome,
  type VerifyHook,
  importSqlite,
} from "./load/import-sqlite.ts";
export type { BadValuePolicy, QuarantineEntry } from "./load/quarantine.ts";
// Data-only loads into the tables an application's ORM created, and undo of a run.
export {
  type CompatibilityProblem,
  DataOnlyIncompatibleError,
  type DataOnlyResult,
  type ImportDataOnlyOptions,
  importSqliteDataOnly,
  type NameMap,
  type UndoResult,
  undoImport,
} from "./load/data-only/index.ts";
export {
  type ImportDocumentsOptions,
  type ImportDocumentsResult,
  type ImportMode,
  importDocuments,
} from "./documents/import-documents.ts";
export type { ExtraColumnSpec, KeySpec } from "./documents/document-table.ts";
export type { LoadedRecordObserver } from "./documents/record-loader.ts";
export { type DocumentInput, iterableSource } from "./documents/resolve-source.ts";
export type { DocumentSource, SourceItem, SourceProblem, SourceRecord } from "./documents/source-record.ts";
export { type CsvOptions, csvSource } from "./sources/csv/csv-source.ts";
export { jsonDirSource } from "./sources/json/json-dir-source.ts";
export { jsonFileSource } from "./sources/json/json-file-source.ts";
export { ndjsonSource } from "./sources/ndjson/ndjson-source.ts";
export { NativeModuleError } from "./sources/sqlite/open-database.ts";

// Sensitive fields encrypted at rest (AES-256-GCM), blind indexes, keyed record MACs, key rotation.
export {
  DecryptionError,
  decryptRow,
  type EncryptedColumn,
  EncryptedTableError,
  type EncryptedTableInfo,
  findByBlindIndex,
  type FindByBlindIndexOptions,
  readEncryptedTable,
  EncryptionKeyError,
  type FieldEncryptionOptions,
  type FieldKey,
  type IntegrityProblem,
  type IntegrityProblemKind,
  Keyring,
  keyringFromJson,
  loadKeyring,
  type RotateKeysOptions,
  type RotateKeysResult,
  RotationRefusedError,
  rotateKeys,
  type VerifyIntegrityOptions,
  type VerifyIntegrityResult,
  verifyIntegrity,
} from "./crypto/index.ts";

// Verification and signed reports.
export {
  type VerifyImportOptions,
  type VerifySqliteOptions,
  verifyImport,
  verifySqlite,
} from "./verify/verify-import.ts";
export { type VerifyDocumentsOptions, verifyDocuments } from "./verify/document-verify.ts";
export { SourceDigests } from "./verify/source-digests.ts";
export type { TargetDescription, VerifyResult } from "./verify/verify-result.ts";
export type { ChangedRow, ColumnDifference, RowKey, TableStatus, TableVerification } from "./verify/types.ts";
export {
  type CheckingKey,
  type ReportSignature,
  type SignatureCheck,
  type SigningKey,
  ReportKeyError,
  checkReportSignature,
  checkingKeyFromFile,
  hmacKeyFromEnv,
  signReport,
  signingKeyFromFile,
} from "./verify/report.ts";

// Blue-green data refresh (README: pgshift refresh).
export {
  type ConflictPolicy,
  type ConflictReport,
  type Dataset,
  type DatasetForeignKey,
  type DatasetTable,
  type ForeignKeyCheck,
  type PruneOptions,
  type PruneResult,
  type RefreshOptions,
  type RefreshOutcome,
  type RefreshReportOptions,
  type RefreshReportRecord,
  type RefreshResult,
  type RefreshStatus,
  type RefreshStep,
  type RefreshVersion,
  type RollbackOptions,
  type RollbackResult,
  type TableBuild,
  type TableCheck,
  type UserCheck,
  NoPreviousVersionError,
  OldSnapshotError,
  REFRESH_METRICS,
  RefreshConflictError,
  RefreshFailedError,
  pruneDataset,
  readDatasetFile,
  refreshDataset,
  refreshMetricFamilies,
  refreshStatus,
  registerRefreshMetrics,
  rollbackDataset,
  singleTableDataset,
} from "./refresh/index.ts";

// Migrations.
export {
  type MigrateOptions,
  type MigrateResult,
  type MigrationOutcome,
  type MigrationRunStatus,
  migrate,
  migrateDown,
} from "./migrate/migrate.ts";
export {
  type MigrationStatus,
  type MigrationStatusOptions,
  type MigrationVerifyResult,
  migrationStatus,
  verifyMigrations,
} from "./migrate/status.ts";
export {
  type AssertSchemaVersionOptions,
  type SchemaVersionInfo,
  assertSchemaVersion,
} from "./migrate/schema-version.ts";
export {
  type LintFinding,
  type LintResult,
  type LintRule,
  LINT_RULES,
  lintMigrations,
} from "./migrate/lint.ts";
export { type BaselineOptions, type BaselineResult, baselineMigrations } from "./migrate/baseline.ts";
export { type NewMigrationOptions, newMigration } from "./migrate/migration-file.ts";
export type { LockMode } from "./migrate/migration-lock.ts";
export * from "./migrate/errors.ts";

// Audit trail (21 CFR Part 11 §11.10(e)): docs/part11.md.
export {
  type AuditAnchor,
  type AuditContext,
  type AuditEvent,
  type AuditLogEntry,
  type AuditLogOptions,
  type AuditProblem,
  type AuditSealer,
  type AuditStatus,
  type EnableAuditOptions,
  type EnableAuditResult,
  type RecordedClusterEvent,
  type RecordSignature,
  type SealResult,
  type SignatureMeaning,
  type VerifyAuditOptions,
  type VerifyAuditResult,
  AuditAnchorError,
  AuditNotInstalledError,
  AuditSignError,
  AuditTableError,
  acknowledgeRestore,
  auditLog,
  auditStatus,
  createAuditAnchor,
  disableAudit,
  enableAudit,
  readAuditAnchor,
  recordAuditEvent,
  recordClusterAuditEvent,
  sealAudit,
  setAuditContext,
  signAuditRecord,
  startAuditSealer,
  verifyAudit,
  withAuditContext,
} from "./audit/index.ts";

// PostgreSQL: the pool, transactions, locks, identifiers, errors.
export {
  type PoolMetrics,
  type PoolOptions,
  type TargetIdentity,
  type TransactionOptions,
  createPool,
  describeTarget,
  poolMetricsOf,
  withClient,
  withTransaction,
} from "./pg/pool.ts";
export { type BreakerState, CircuitOpenError } from "./pg/circuit-breaker.ts";
export {
  type AdvisoryLockOptions,
  type LockHolder,
  LockBusyError,
  withAdvisoryLock,
} from "./pg/advisory-lock.ts";
export { quoteIdent, quoteQualified } from "./pg/quote.ts";
export { type TargetCheck, checkTarget } from "./pg/check-target.ts";
export { type PgErrorFields, ConnectionError, PgError } from "./pg/errors.ts";

// Settings, redaction, managed local PostgreSQL.
export {
  type LoadSettingsInput,
  type ResolvedSettings,
  type Settings,
  loadSettings,
} from "./config/settings.ts";
export { redactText, redactUrl } from "./config/redact.ts";
export {
  type LocalInstanceOptions,
  type LocalInstanceStatus,
  type StartResult,
  destroyLocalInstance,
  ensureLocalInstance,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "./local/instance.ts";
export { asPgshiftError } from "./errors.ts";
export { PGSHIFT_VERSION } from "./version.ts";

// Operating a service's database: health server, roles and row-level security, tuning.
export {
  type HealthReport,
  type HealthServer,
  type HealthServerOptions,
  type MetricsSource,
  startHealthServer,
} from "./serve/health-server.ts";
export type { CheckResult, HealthCheck } from "./serve/health-checks.ts";
export {
  type MaintenanceOptions,
  type MaintenanceReport,
  maintenanceChecks,
} from "./serve/maintenance-checks.ts";
export {
  type MigrationsCheckOptions,
  archiveLagCheck,
  migrationsCheck,
  replicationLagCheck,
} from "./serve/readiness-checks.ts";
export {
  type LastDrill,
  BACKUP_METRICS,
  backupMetricFamilies,
  readLastDrill,
  registerBackupMetrics,
} from "./backup/backup-metrics.ts";
export { type ProvisionOptions, type ProvisionResult, provisionRoles } from "./provision/roles.ts";
export { type RlsOptions, type RlsResult, provisionRls } from "./provision/rls.ts";
export { type TuneInput, type TuneResult, alterSystemSql, confSnippet, tune } from "./provision/tune.ts";

// API mirror: pull an endpoint into a JSON cache, freshness per endpoint, the PostgreSQL -> cache -> API reader.
export {
  type ApiClient,
  type ApiClientMetrics,
  type ApiClientOptions,
  type ApiEnvelope,
  type ApiMeta,
  type ApiPage,
  type ApiQuery,
  createApiClient,
} from "./mirror/api-client.ts";
export {
  findEndpoint,
  type MirrorEndpoint,
  OPENFDA_DEVICE_ENDPOINTS,
  recordKey,
} from "./mirror/endpoints.ts";
export {
  createFallbackReader,
  type FallbackReader,
  type FallbackReaderOptions,
  type ReadAnswer,
  type ReaderMetrics,
  type SearchAnswer,
  type SearchQuery,
  type StalePolicy,
  type Tier,
  type TierMetrics,
} from "./mirror/fallback-reader.ts";
export { type CachedRecord, JsonCache, type JsonCacheOptions } from "./mirror/json-cache.ts";
export {
  ApiRequestError,
  ApiUnavailableError,
  MirrorUnavailableError,
  PullStateError,
} from "./mirror/mirror-errors.ts";
export {
  type EndpointFreshness,
  type EndpointStatus,
  mirrorStatus,
  readFreshness,
  recordFreshness,
} from "./mirror/mirror-schema.ts";
export { type PullOptions, type PullResult, pullEndpoint } from "./mirror/pull-endpoint.ts";
export { mirrorDataset, type RefreshMirrorOptions, refreshMirror } from "./mirror/refresh-mirror.ts";
export { type EndpointVerification, verifyMirror } from "./mirror/verify-mirror.ts";
export {
  type DownloadOptions,
  type DownloadResult,
  downloadEndpoint,
  type ManifestPartition,
} from "./mirror/download-endpoint.ts";
