// One small type per process state, as in runc's shim: each state offers only
// the transitions that are legal from it, so an illegal one cannot be written.
// Every method either performs the transition or throws the ShimError whose
// kind containerd expects (failed-precondition, not-found, invalid-argument).
import type { ExitInfo, WasmInstance } from '../engine/engine.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { Status } from '../../gen/containerd/types/task/task_pb.js';

const SIGKILL = 9;
const SIGSTOP = 19;
const SIGCONT = 18;

export interface ProcessState {
  readonly status: Status;
  start(): RunningState;
  kill(signal: number): void;
  pause(): PausedState;
  resume(): RunningState;
  /** Only a stopped process can be deleted; a created one is killed first by the caller. */
  delete(): DeletedState;
  exited(exit: ExitInfo): ProcessState;
}

const FINISHED = 'process already finished';

function signal(instance: WasmInstance, sig: number): void {
  try {
    instance.signal(sig);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ERR_UNKNOWN_SIGNAL') throw invalidArgument(`invalid signal ${sig}`);
    throw notFound(FINISHED);
  }
}

/** Refuses every transition; each state overrides the ones that are legal from it. */
abstract class RefusingState implements ProcessState {
  abstract readonly status: Status;
  /** How refusals name the state: "cannot pause a created process". */
  protected abstract readonly label: string;
  abstract kill(signal: number): void;
  abstract exited(exit: ExitInfo): ProcessState;
  start(): RunningState {
    return this.refuse('start');
  }
  pause(): PausedState {
    return this.refuse('pause');
  }
  resume(): RunningState {
    return this.refuse('resume');
  }
  delete(): DeletedState {
    return this.refuse('delete');
  }
  protected refuse(what: string, label = this.label): never {
    throw failedPrecondition(`cannot ${what} a ${label} process`);
  }
}

/** Created, running or paused: the instance is alive, signals reach it and its exit stops it. */
abstract class LiveState extends RefusingState {
  constructor(protected readonly instance: WasmInstance) {
    super();
  }
  kill(sig: number): void {
    signal(this.instance, sig);
  }
  exited(exit: ExitInfo): StoppedState {
    return new StoppedState(exit);
  }
}

export class CreatedState extends LiveState {
  readonly status = Status.CREATED;
  protected readonly label = 'created';
  override start(): RunningState {
    this.instance.run();
    return new RunningState(this.instance);
  }
  override delete(): DeletedState {
    return this.refuse('delete', 'created (kill it first)');
  }
}

export class RunningState extends LiveState {
  readonly status = Status.RUNNING;
  protected readonly label = 'running';
  override pause(): PausedState {
    signal(this.instance, SIGSTOP);
    return new PausedState(this.instance);
  }
}

export class PausedState extends LiveState {
  readonly status = Status.PAUSED;
  protected readonly label = 'paused';
  override kill(sig: number): void {
    signal(this.instance, sig);
    // A stopped process only acts on SIGKILL; let other signals be delivered.
    if (sig !== SIGKILL && sig !== SIGSTOP) signal(this.instance, SIGCONT);
  }
  override resume(): RunningState {
    signal(this.instance, SIGCONT);
    return new RunningState(this.instance);
  }
}

export class StoppedState extends RefusingState {
  readonly status = Status.STOPPED;
  protected readonly label = 'stopped';
  constructor(readonly exit: ExitInfo) {
    super();
  }
  kill(): void {
    throw notFound(FINISHED);
  }
  override delete(): DeletedState {
    return new DeletedState(this.exit);
  }
  exited(): StoppedState {
    return this;
  }
}

/** Everything is refused as not found: the process is gone from the container. */
export class DeletedState extends RefusingState {
  readonly status = Status.STOPPED;
  protected readonly label = 'deleted';
  constructor(readonly exit: ExitInfo) {
    super();
  }
  kill(): void {
    this.refuse();
  }
  exited(): DeletedState {
    return this;
  }
  protected override refuse(): never {
    throw notFound('process already deleted');
  }
}
