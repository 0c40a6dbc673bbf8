// Messages between the daemon (main thread) and the export worker. Types only.

import type { EnabledTelemetryConfig } from './config.js';
import type { SpanRecord } from './recorder.js';

export interface WorkerInit {
  config: EnabledTelemetryConfig;
  scopeVersion?: string;
}

export interface WorkerStats {
  /** Records received from the main thread. */
  received: number;
  /** Records rejected as malformed. */
  invalid: number;
  /** Spans the endpoint accepted. */
  exported: number;
  failedExports: number;
  failedSpans: number;
  lastError: string | undefined;
}

export type MainToWorker =
  | { type: 'spans'; records: SpanRecord[] }
  | { type: 'flush'; id: number }
  | { type: 'stats'; id: number }
  | { type: 'shutdown'; id: number };

export type WorkerToMain =
  | { type: 'ready' }
  | { type: 'init-error'; error: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error' | 'debug'; msg: string }
  /** One export's outcome: the main thread reports dropped spans from these. */
  | { type: 'exported'; ok: boolean; spans: number; error?: string }
  /** Spans the SDK dropped before any export (its queue was full). */
  | { type: 'dropped'; spans: number; reason: string }
  | { type: 'flushed'; id: number; ok: boolean; error?: string; stats: WorkerStats }
  | { type: 'stats'; id: number; stats: WorkerStats }
  | { type: 'shutdown-done'; id: number; stats: WorkerStats };
