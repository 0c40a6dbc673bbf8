// A stand-in for the Node engine (runwasi's stub Instance, for us): instances
// are plain objects whose exits, signals and usage a test controls, so the Task
// service and containers run in process without a Wasm child.
import type {
  Engine,
  ExitInfo,
  ModuleSpec,
  PrepareOptions,
  ProcessUsage,
  WasmInstance,
} from '../../src/daemon/engine/engine.js';

const SIGKILL = 9;
const SIGCONT = 18;
const SIGSTOP = 19;
/** Signals whose default action is not to terminate (SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH). */
const HARMLESS = new Set([17, SIGCONT, SIGSTOP, 20, 21, 22, 23, 28]);

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`kill ${code}`), { code });
}

export class FakeInstance implements WasmInstance {
  readonly exited: Promise<ExitInfo>;
  /** Every signal sent, in order (including the ones that stopped or continued it). */
  readonly signals: number[] = [];
  ran = false;
  stdinClosed = false;
  /** Stopped by SIGSTOP: a terminating signal other than SIGKILL waits for SIGCONT, as in the kernel. */
  stopped = false;
  usageValue: ProcessUsage | undefined = { rssBytes: 4096, userNanos: 2_000_000, kernelNanos: 1_000_000 };
  private pending: number | undefined;
  private resolveExit!: (exit: ExitInfo) => void;
  private exitInfo: ExitInfo | undefined;
  private vanished = false;

  constructor(
    readonly pid: number,
    readonly spec: ModuleSpec,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  get gone(): boolean {
    return this.exitInfo !== undefined || this.vanished;
  }

  /** The process is gone but its exit is not reported yet (the child's last IPC still in the pipe). */
  vanish(): void {
    this.vanished = true;
  }

  run(): void {
    if (this.ran) throw new Error(`instance ${this.pid} was run twice`);
    this.ran = true;
  }

  signal(sig: number): void {
    if (!Number.isInteger(sig) || sig < 0 || sig > 64) throw errno('EINVAL');
    if (this.gone) throw errno('ESRCH');
    this.signals.push(sig);
    if (sig === 0) return;
    if (sig === SIGSTOP) this.stopped = true;
    else if (sig === SIGCONT) {
      this.stopped = false;
      if (this.pending !== undefined) this.exit(128 + this.pending);
    } else if (sig === SIGKILL) this.exit(128 + SIGKILL);
    else if (!HARMLESS.has(sig)) {
      if (this.stopped) this.pending = sig;
      else this.exit(128 + sig);
    }
  }

  /** The module ends (proc_exit, return, a trap or a signal's 128 + n); later calls change nothing. */
  exit(status: number): void {
    if (this.exitInfo) return;
    this.exitInfo = { status, exitedAt: new Date() };
    this.resolveExit(this.exitInfo);
  }

  closeStdin(): void {
    this.stdinClosed = true;
  }

  usage(): ProcessUsage | undefined {
    return this.gone ? undefined : this.usageValue;
  }
}

export class FakeEngine implements Engine {
  readonly instances: FakeInstance[] = [];
  /** Pids handed to the cgroup placement hook, when the container has a cgroup. */
  readonly placed: number[] = [];
  private nextPid = 4000;
  private failures: Error[] = [];
  private held: { release: () => void; promise: Promise<void> } | undefined;

  /** The next prepare rejects with this error (a ModuleError for a module the engine refuses). */
  failNextPrepare(err: Error): void {
    this.failures.push(err);
  }

  /** Prepares wait until the returned release is called (a Create still under way). */
  holdPrepares(): () => void {
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.held = { release, promise };
    return () => {
      this.held = undefined;
      release();
    };
  }

  async prepare(spec: ModuleSpec, options: PrepareOptions = {}): Promise<WasmInstance> {
    await this.held?.promise;
    const failure = this.failures.shift();
    if (failure) throw failure;
    const instance = new FakeInstance(this.nextPid++, spec);
    if (options.place) {
      this.placed.push(instance.pid);
      try {
        await options.place(instance.pid);
      } catch (err) {
        instance.exit(128 + SIGKILL);
        throw err;
      }
    }
    this.instances.push(instance);
    return instance;
  }

  /** The instance prepared for a container's process ('' for init). */
  instance(containerId: string, execId = ''): FakeInstance {
    const found = this.instances.findLast((i) => i.spec.containerId === containerId && i.spec.execId === execId);
    if (!found) throw new Error(`no instance prepared for ${containerId}/${execId}`);
    return found;
  }
}
