// The one seam between the shim plumbing and whatever runs a module. The shim
// only ever sees these types; src/daemon/engine/node-engine.ts is the implementation.
import type { Readable } from 'node:stream';
import type { ModuleJob } from '../../child/job.js';

/** What to run (ModuleJob, as the Wasm child receives it), and its stdin, which stays in the daemon. */
export interface ModuleSpec extends ModuleJob {
  /** Bytes for the module's stdin; undefined = empty stdin. */
  stdin?: Readable;
}

export interface ExitInfo {
  /** 0–255; 128 + signal number when killed by a signal. */
  status: number;
  exitedAt: Date;
}

export interface ProcessUsage {
  rssBytes: number;
  userNanos: number;
  kernelNanos: number;
}

export interface WasmInstance {
  readonly pid: number;
  /** Resolves once, when the process is gone and its output is flushed. */
  readonly exited: Promise<ExitInfo>;
  /** Lets the prepared instance run its export. */
  run(): void;
  /** Sends a raw signal number; throws ESRCH-style errors when already gone. */
  signal(signal: number): void;
  closeStdin(): void;
  usage(): ProcessUsage | undefined;
}

/** A module the engine refused to prepare; the message names the cause. */
export class ModuleError extends Error {}

export interface PrepareOptions {
  /**
   * Places the child (its cgroup) as soon as its pid is known, while it
   * compiles; prepare resolves once both are done, and fails if placing fails.
   */
  place?(pid: number): Promise<void>;
}

export interface Engine {
  /** Compiles and instantiates in a child process; resolves when it is ready to run. */
  prepare(spec: ModuleSpec, options?: PrepareOptions): Promise<WasmInstance>;
}
