// One small type per process state, as in runc's shim: each state offers only
// the transitions that are legal from it, so an illegal one cannot be written.
// Every method either performs the transition or throws the ttrpc error
// containerd expects.
import type { ExitInfo, WasmInstance } from '../engine/engine.js';
import { Code, TtrpcError } from '../../ttrpc/status.js';
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

function illegal(what: string, state: string): never {
  throw new TtrpcError(Code.FailedPrecondition, `cannot ${what} a ${state} process`);
}

function signal(instance: WasmInstance, sig: number): void {
  try {
    instance.signal(sig);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ERR_UNKNOWN_SIGNAL')
      throw new TtrpcError(Code.InvalidArgument, `invalid signal ${sig}`);
    throw new TtrpcError(Code.NotFound, 'process already finished');
  }
}

export class CreatedState implements ProcessState {
  readonly status = Status.CREATED;
  constructor(private readonly instance: WasmInstance) {}
  start(): RunningState {
    this.instance.run();
    return new RunningState(this.instance);
  }
  kill(sig: number): void {
    signal(this.instance, sig);
  }
  pause(): PausedState {
    return illegal('pause', 'created');
  }
  resume(): RunningState {
    return illegal('resume', 'created');
  }
  delete(): DeletedState {
    return illegal('delete', 'created (kill it first)');
  }
  exited(exit: ExitInfo): StoppedState {
    return new StoppedState(exit);
  }
}

export class RunningState implements ProcessState {
  readonly status = Status.RUNNING;
  constructor(private readonly instance: WasmInstance) {}
  start(): RunningState {
    return illegal('start', 'running');
  }
  kill(sig: number): void {
    signal(this.instance, sig);
  }
  pause(): PausedState {
    signal(this.instance, SIGSTOP);
    return new PausedState(this.instance);
  }
  resume(): RunningState {
    return illegal('resume', 'running');
  }
  delete(): DeletedState {
    return illegal('delete', 'running');
  }
  exited(exit: ExitInfo): StoppedState {
    return new StoppedState(exit);
  }
}

export class PausedState implements ProcessState {
  readonly status = Status.PAUSED;
  constructor(private readonly instance: WasmInstance) {}
  start(): RunningState {
    return illegal('start', 'paused');
  }
  kill(sig: number): void {
    signal(this.instance, sig);
    // A stopped process only acts on SIGKILL; let other signals be delivered.
    if (sig !== SIGKILL && sig !== SIGSTOP) signal(this.instance, SIGCONT);
  }
  pause(): PausedState {
    return illegal('pause', 'paused');
  }
  resume(): RunningState {
    signal(this.instance, SIGCONT);
    return new RunningState(this.instance);
  }
  delete(): DeletedState {
    return illegal('delete', 'paused');
  }
  exited(exit: ExitInfo): StoppedState {
    return new StoppedState(exit);
  }
}

export class StoppedState implements ProcessState {
  readonly status = Status.STOPPED;
  constructor(readonly exit: ExitInfo) {}
  start(): RunningState {
    return illegal('start', 'stopped');
  }
  kill(): void {
    throw new TtrpcError(Code.NotFound, 'process already finished');
  }
  pause(): PausedState {
    return illegal('pause', 'stopped');
  }
  resume(): RunningState {
    return illegal('resume', 'stopped');
  }
  delete(): DeletedState {
    return new DeletedState(this.exit);
  }
  exited(): StoppedState {
    return this;
  }
}

export class DeletedState implements ProcessState {
  readonly status = Status.STOPPED;
  constructor(readonly exit: ExitInfo) {}
  private gone(): never {
    throw new TtrpcError(Code.NotFound, 'process already deleted');
  }
  start(): RunningState {
    return this.gone();
  }
  kill(): void {
    this.gone();
  }
  pause(): PausedState {
    return this.gone();
  }
  resume(): RunningState {
    return this.gone();
  }
  delete(): DeletedState {
    return this.gone();
  }
  exited(): DeletedState {
    return this;
  }
}
