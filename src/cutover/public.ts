/**
 * The `pgshift/cutover` entry point: what an application embeds to move a store to PostgreSQL while it
 * keeps serving (cutover, DocumentStore as the next side, backfill sinks, the status server). It loads
 * none of the importers, so an application that only cuts over does not load SQLite or the SQL parser.
 */
export {
  type MapCutoverOptions,
  type AsyncMapLike,
  asyncMap,
  createMapCutover,
  documentMap,
  documentSink,
} from "./document-adapter.ts";
export {
  type CutoverControl,
  type CutoverMetrics,
  type CutoverOptions,
  type CutoverSideMetrics,
  type CutoverStatus,
  type CutoverStore,
  type MethodName,
  createCutover,
  defaultCutoverKeyOf,
} from "./create-cutover.ts";
export {
  type CutoverBackfillOptions,
  type CutoverBackfillResult,
  type CutoverBackfillSink,
  BackfillResumeError,
} from "./backfill.ts";
export {
  type CutoverKeyAccess,
  type CutoverRepairEntry,
  type CutoverRepairOptions,
  type CutoverRepairResult,
} from "./repair-ledger.ts";
export { type CutoverVerifyOptions, type CutoverVerifyResult, type CutoverVerifySample } from "./verifier.ts";
export { type UpsertSinkOptions, upsertSink } from "./upsert-sink.ts";
export { type MapLikeMethods, mapLikeAccess } from "./map-like-access.ts";
export {
  type CutoverPhase,
  type CutoverSide,
  type ParsedCutoverPhase,
  CUTOVER_PHASES,
  formatCutoverPhase,
  isCutoverPhase,
  parseCutoverPhase,
} from "./phases.ts";
export {
  type CutoverPhaseChange,
  type SetCutoverPhaseOptions,
  PhaseChangeRefusedError,
  UnknownCutoverError,
  setCutoverPhase,
} from "./cutover-state.ts";
export {
  type CutoverStatusReport,
  type CutoverSummary,
  type CutoverVerifyReport,
  cutoverStatus,
  cutoverVerifyReport,
  listCutovers,
} from "./cutover-report.ts";
export {
  type RampAction,
  type RampDecision,
  type RampPolicyOptions,
  type RampState,
  RampPolicy,
  readRampState,
  resumeRamp,
  startRampPolicy,
} from "./ramp-policy.ts";
export {
  type RampSettings,
  type RampSettingsInput,
  type RampThresholds,
  DEFAULT_RAMP_THRESHOLDS,
  rampVariable,
  resolveRampSettings,
} from "./ramp-settings.ts";
export type { CutoverHealthFigures, CutoverHealthReport } from "./health-report.ts";
export {
  type CutoverRestoreResult,
  type CutoverSnapshot,
  SnapshotChecksumError,
  listSnapshots,
  restoreLegacyFromSnapshot,
} from "./snapshot.ts";
export { type CutoverAlertRulesOptions, cutoverAlertRules } from "./alert-rules.ts";
export { CUTOVER_METRICS, POOL_CONNECTIONS_METRIC } from "./prometheus.ts";
export type { LatencySummary } from "./latency-reservoir.ts";
export type { ShadowCounts, ShadowErrorSample, ShadowMismatchSample } from "./shadow-stats.ts";
export {
  type DocumentKey,
  type DocumentRow,
  type DocumentStoreOptions,
  type JsonDocument,
  type PageResult,
  DocumentStore,
} from "../documents/document-store.ts";
export {
  type PoolState,
  type StatusReport,
  type StatusServer,
  type StatusServerOptions,
  metricsText,
  startStatusServer,
  statusReport,
} from "../serve/status-server.ts";
export { ExitCode, PgshiftError, SettingsError, UsageError } from "../errors.ts";
export type { Logger, ProgressCallback, ProgressEvent } from "../progress.ts";
