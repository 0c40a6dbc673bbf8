// Messages on the IPC channel between the daemon and a Wasm child.
import type { ModuleUser } from './engine.js';

export interface ChildJob {
  modulePath: string;
  exportName: string;
  args: string[];
  env: string[];
  cwd: string;
  preopens: Record<string, string>;
  stdout: string;
  stderr: string;
  user?: ModuleUser;
  traceparent?: string;
  containerId: string;
  execId: string;
}

export type ToChild = { t: 'job'; job: ChildJob } | { t: 'run' };

export type FromChild =
  | { t: 'ready' }
  | { t: 'error'; message: string }
  | { t: 'spans'; records: unknown[] };

/** Exit status of a module that trapped: 128 + SIGABRT, as wasmtime reports it. */
export const TRAP_EXIT_STATUS = 134;
/** Exit status when the child could not even prepare the module. */
export const SETUP_EXIT_STATUS = 125;
