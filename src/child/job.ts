// What the daemon asks a Wasm child to run. The engine seam's ModuleSpec
// (src/daemon/engine/engine.ts) is this plus the stdin stream; the child
// receives it over IPC (protocol.ts), checked field by field.
import type { ChildTraceContext } from '../telemetry/propagation.js';

export interface ModuleUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

export interface ModuleJob {
  /** For log lines and telemetry. */
  containerId: string;
  execId: string;
  /** Host path of the module file (already checked to be Wasm). */
  modulePath: string;
  exportName: string;
  args: string[];
  env: string[];
  /** Guest path → host directory. */
  preopens: Record<string, string>;
  /** Host paths of stdout/stderr (FIFO or file); '' = discard. */
  stdout: string;
  stderr: string;
  user?: ModuleUser;
  /** Trace context for the module's environment and the child's own spans. */
  trace?: ChildTraceContext;
}
