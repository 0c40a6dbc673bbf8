// Engine implementation: one forked Node process per module, talking over IPC.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants, setPriority } from 'node:os';
import type { Engine, ExitInfo, ModuleSpec, PrepareOptions, ProcessUsage, WasmInstance } from './engine.js';
import { ModuleError } from './engine.js';
import {
  parseFromChild,
  type ChildJob,
  type ComponentCacheConfig,
  type FromChild,
  type ToChild,
} from '../../child/protocol.js';
import { ChildSpanRelay } from '../../telemetry/child-relay.js';
import type { SpanRecord } from '../../telemetry/recorder.js';

export interface NodeEngineOptions {
  /** Path of the bundled child entry (dist/wasm-child.cjs). */
  childEntry: string;
  /** Where children keep transpiled components (the daemon: componentCacheConfig of its environment). */
  componentCache: ComponentCacheConfig;
  /** Where the children's finished spans go (the telemetry pipeline); without it they are dropped. */
  submitSpans?: (records: SpanRecord[]) => void;
}

const SIGNALS = osConstants.signals as Record<string, number>;
const CLK_TCK = 100; // Linux USER_HZ

/** Niceness a warm child boots at, so booting it only takes CPU that running containers leave idle. */
const WARM_NICENESS = 19;

/**
 * A container's child runs at normal priority. Niceness is per thread on
 * Linux: every thread of the warm child (V8's compiler workers among them)
 * goes back to 0, not only its main thread.
 */
function unnice(pid: number): void {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    tids = [String(pid)];
  }
  for (const tid of tids) {
    try {
      setPriority(Number(tid), 0);
    } catch {
      // not root, or the thread is gone
    }
  }
}

export class NodeEngine implements Engine {
  /** A child booted ahead of the next Create, so Node's start-up is off its path. */
  private warm: ChildProcess | undefined;
  private keepingWarm = false;
  private closed = false;

  constructor(private readonly options: NodeEngineOptions) {}

  /** Keeps one warm child ready from now on: booted now, and again each time a Create takes it. */
  keepWarm(): void {
    this.keepingWarm = true;
    this.bootWarm();
  }

  /** Ends the warm child; prepared and running children are the containers' own. */
  close(): void {
    this.closed = true;
    this.warm?.kill('SIGKILL');
    this.warm = undefined;
  }

  private bootWarm(): void {
    if (this.warm || this.closed || !this.keepingWarm) return;
    const child = this.spawnChild();
    try {
      if (child.pid) setPriority(child.pid, WARM_NICENESS);
    } catch {
      // not permitted: it boots at normal priority
    }
    child.once('exit', () => {
      if (this.warm === child) this.warm = undefined;
    });
    this.warm = child;
  }

  private spawnChild(): ChildProcess {
    // The env is empty: the module gets the spec's env through WASI, and
    // TRACECONTEXT arrives with the job (a warm child is booted before it is known).
    return spawn(process.execPath, [this.options.childEntry], {
      stdio: ['pipe', 'ignore', 'ignore', 'ipc'],
      env: {},
      cwd: '/',
    });
  }

  async prepare(spec: ModuleSpec, options: PrepareOptions = {}): Promise<WasmInstance> {
    const warm = this.warm;
    this.warm = undefined;
    let child: ChildProcess;
    if (warm && warm.exitCode === null && warm.signalCode === null && warm.connected) {
      child = warm;
      if (child.pid) unnice(child.pid);
    } else {
      child = this.spawnChild();
    }
    // The next warm child boots once this Create has had the CPU.
    setImmediate(() => this.bootWarm());
    const { stdin: _stdin, ...rest } = spec;
    const job: ChildJob = { ...rest, componentCache: this.options.componentCache };
    const instance = new ChildInstance(child, spec, (records) => this.options.submitSpans?.(records));
    // The child compiles while it is placed (a cgroup move can take milliseconds).
    const [placed, ready] = await Promise.allSettled([options.place?.(instance.pid), instance.prepare(job)]);
    if (ready.status === 'rejected') throw ready.reason;
    if (placed.status === 'rejected') {
      try {
        instance.signal(SIGNALS.SIGKILL);
      } catch {
        // already gone
      }
      throw placed.reason;
    }
    return ready.value;
  }
}

class ChildInstance implements WasmInstance {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  /** While prepare waits: takes the child's answer to its job (ready or error). */
  private answerJob: ((message: FromChild) => void) | undefined;

  constructor(
    private readonly child: ChildProcess,
    private readonly spec: ModuleSpec,
    onSpans: (records: SpanRecord[]) => void,
  ) {
    const spans = new ChildSpanRelay(onSpans);
    if (!child.pid) throw new ModuleError(`could not start the Wasm child process for ${spec.containerId}`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const status = signal ? 128 + (SIGNALS[signal] ?? 0) : (code ?? 255);
        const exitedAt = new Date();
        const done = () => {
          spans.childExited({ status, signal, exitedAt });
          resolve({ status, exitedAt });
        };
        // Spans the child sent just before exiting may still be in the IPC pipe.
        if (child.connected) {
          const timer = setTimeout(done, 100);
          child.once('disconnect', () => {
            clearTimeout(timer);
            done();
          });
        } else {
          done();
        }
      });
    });
    child.on('error', () => undefined); // spawn/IPC errors surface through 'exit'
    child.on('message', (raw: unknown) => {
      const message = parseFromChild(raw);
      if (message?.t === 'spans') spans.finished(message.records);
      else if (message?.t === 'span-open') spans.opened(message.span);
      else if (message) this.answerJob?.(message);
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
      const onExit = () => {
        this.answerJob = undefined;
        reject(new ModuleError(`the Wasm child for ${this.spec.containerId} exited during setup`));
      };
      this.answerJob = (message) => {
        if (message.t !== 'ready' && message.t !== 'error') return;
        this.answerJob = undefined;
        this.child.removeListener('exit', onExit);
        if (message.t === 'ready') resolve(this);
        else reject(new ModuleError(message.message));
      };
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
