// Messages on the IPC channel between the daemon and a Wasm child.
import type { ModuleSpec } from './engine.js';

/** Where the child keeps transpiled components (src/wasm/component-cache.ts); the daemon chooses it. */
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
  | { t: 'spans'; records: unknown[] };

/** Exit status of a module that trapped: 128 + SIGABRT, as wasmtime reports it. */
export const TRAP_EXIT_STATUS = 134;
/** Exit status when the child could not even prepare the module. */
export const SETUP_EXIT_STATUS = 125;
