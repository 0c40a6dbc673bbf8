// Engine implementation: one forked Node process per module, talking over IPC.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants, setPriority } from 'node:os';
import type { Engine, ExitInfo, ModuleSpec, ProcessUsage, WasmInstance } from './engine.js';
import { ModuleError } from './engine.js';
import { componentCacheConfig } from './component-cache.js';
import type { ChildJob, ComponentCacheConfig, FromChild, ToChild } from './protocol.js';

export interface NodeEngineOptions {
  /** Path of the bundled child entry (dist/wasm-child.cjs). */
  childEntry: string;
  /** Extra node flags for the child (heap limits and the like). */
  nodeArgs?: string[];
  /** Transpiled-component cache; default from WASMTS_COMPONENT_CACHE(_MAX_MB) or /var/lib/wasmts/components. */
  componentCache?: ComponentCacheConfig;
}

const SIGNALS = osConstants.signals as Record<string, number>;
const CLK_TCK = 100; // Linux USER_HZ

export class NodeEngine implements Engine {
  /** A child booted ahead of the first Create, so Node's start-up is off its path. */
  private spare: ChildProcess | undefined;
  /** Set by the daemon when tracing is on. */
  onChildSpans: ((records: unknown[]) => void) | undefined;

  constructor(private readonly options: NodeEngineOptions) {}

  /** Boots one spare child now (used by the next prepare). */
  warm(): void {
    if (this.spare) return;
    const child = this.spawnChild();
    child.once('exit', () => {
      if (this.spare === child) this.spare = undefined;
    });
    this.spare = child;
  }

  /** The spare child inherited its parent's niceness; a container's child runs at normal priority. */
  unniceSpare(): void {
    try {
      if (this.spare?.pid) setPriority(this.spare.pid, 0);
    } catch {
      // not root
    }
  }

  private spawnChild(): ChildProcess {
    // The env is empty: the module gets the spec's env through WASI, and
    // TRACECONTEXT arrives with the job (a spare is booted before it is known).
    return spawn(process.execPath, [...(this.options.nodeArgs ?? []), this.options.childEntry], {
      stdio: ['pipe', 'ignore', 'ignore', 'ipc'],
      env: {},
      cwd: '/',
    });
  }

  prepare(spec: ModuleSpec): Promise<WasmInstance> {
    const spare = this.spare;
    this.spare = undefined;
    const child = spare && spare.exitCode === null && spare.signalCode === null && spare.connected ? spare : this.spawnChild();
    const { stdin: _stdin, ...rest } = spec;
    const job: ChildJob = { ...rest, componentCache: this.options.componentCache ?? componentCacheConfig(process.env) };
    const instance = new ChildInstance(child, spec, (records) => this.onChildSpans?.(records));
    return instance.prepare(job);
  }
}

class ChildInstance implements WasmInstance {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private setupError: string | undefined;

  constructor(
    private readonly child: ChildProcess,
    private readonly spec: ModuleSpec,
    private readonly onSpans?: (records: unknown[]) => void,
  ) {
    if (!child.pid) throw new ModuleError(`could not start the Wasm child process for ${spec.containerId}`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const status = signal ? 128 + (SIGNALS[signal] ?? 0) : (code ?? 255);
        const exitedAt = new Date();
        // Spans the child sent just before exiting may still be in the IPC pipe.
        if (child.connected) {
          const timer = setTimeout(() => resolve({ status, exitedAt }), 100);
          child.once('disconnect', () => {
            clearTimeout(timer);
            resolve({ status, exitedAt });
          });
        } else {
          resolve({ status, exitedAt });
        }
      });
    });
    child.on('error', () => undefined); // spawn/IPC errors surface through 'exit'
    child.on('message', (message: FromChild) => {
      if (message.t === 'spans') this.onSpans?.(message.records);
      else if (message.t === 'error') this.setupError = message.message;
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // EPIPE once the module stops reading
      if (spec.stdin) {
        spec.stdin.on('error', () => child.stdin?.end());
        spec.stdin.pipe(child.stdin);
      } else {
        child.stdin.end(); // no stdin: the module reads EOF
      }
    }
  }

  prepare(job: ChildJob): Promise<WasmInstance> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: FromChild) => {
        if (message.t === 'ready') {
          cleanup();
          resolve(this);
        } else if (message.t === 'error') {
          cleanup();
          reject(new ModuleError(message.message));
        }
      };
      const onExit = () => {
        cleanup();
        reject(new ModuleError(this.setupError ?? `the Wasm child for ${this.spec.containerId} exited during setup`));
      };
      const cleanup = () => {
        this.child.removeListener('message', onMessage);
        this.child.removeListener('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.post({ t: 'job', job });
    });
  }

  run(): void {
    this.post({ t: 'run' });
  }

  signal(signal: number): void {
    process.kill(this.pid, signal);
  }

  closeStdin(): void {
    this.spec.stdin?.unpipe();
    this.child.stdin?.end();
  }

  usage(): ProcessUsage | undefined {
    try {
      const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return {
        rssBytes: rssKb * 1024,
        userNanos: (Number(fields[11]) * 1e9) / CLK_TCK,
        kernelNanos: (Number(fields[12]) * 1e9) / CLK_TCK,
      };
    } catch {
      return undefined;
    }
  }

  private post(message: ToChild): void {
    if (this.child.connected) this.child.send(message);
  }
}
