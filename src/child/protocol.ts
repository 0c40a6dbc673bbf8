// Messages on the IPC channel between the daemon and a Wasm child.
import type { ModuleSpec } from '../daemon/engine/engine.js';
import type { SpanRecord } from '../telemetry/recorder.js';
import { parseSpanRecord } from '../telemetry/records.js';

/** Where the child keeps transpiled components (src/child/component-cache.ts); the daemon chooses it. */
export interface ComponentCacheConfig {
  dir: string;
  maxBytes: number;
}

/** A module spec as it crosses IPC: everything but the stdin stream, which stays in the daemon. */
export type ChildJob = Omit<ModuleSpec, 'stdin'> & { componentCache: ComponentCacheConfig };

export type ToChild = { t: 'job'; job: ChildJob } | { t: 'run' };

export type FromChild =
  | { t: 'ready' }
  | { t: 'error'; message: string }
  /** Finished spans (compile, instantiate, run), for the daemon's exporter. */
  | { t: 'spans'; records: SpanRecord[] }
  /** wasm.run as it starts: the daemon ends it should the child be killed first. */
  | { t: 'span-open'; span: SpanRecord };

const MAX_RECORDS_PER_MESSAGE = 256;
const MAX_ERROR_MESSAGE = 4096;

/** A message from a child, checked field by field; undefined for anything else. Invalid span records are left out. */
export function parseFromChild(raw: unknown): FromChild | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  switch (m.t) {
    case 'ready':
      return { t: 'ready' };
    case 'error':
      return {
        t: 'error',
        message: typeof m.message === 'string' ? m.message.slice(0, MAX_ERROR_MESSAGE) : 'the Wasm child failed',
      };
    case 'spans': {
      if (!Array.isArray(m.records)) return undefined;
      const records: SpanRecord[] = [];
      for (const r of m.records.slice(0, MAX_RECORDS_PER_MESSAGE)) {
        const rec = parseSpanRecord(r);
        if (rec?.process === 'child') records.push(rec);
      }
      return { t: 'spans', records };
    }
    case 'span-open': {
      const span = parseSpanRecord(m.span);
      return span?.process === 'child' ? { t: 'span-open', span } : undefined;
    }
    default:
      return undefined;
  }
}

/** Exit status of a module that trapped: 128 + SIGABRT, as wasmtime reports it. */
export const TRAP_EXIT_STATUS = 134;
/** Exit status when the child could not even prepare the module. */
export const SETUP_EXIT_STATUS = 125;
