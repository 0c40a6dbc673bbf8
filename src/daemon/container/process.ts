// A process of a container (the init process or an exec): its stdio, its
// Wasm instance and its current state.
import type { ExitInfo, WasmInstance } from '../engine/engine.js';
import { CreatedState, type ProcessState, StoppedState, DeletedState } from './process-state.js';
import type { StdioPaths } from './stdio.js';

const SIGKILL = 9;

export class Process {
  private current: ProcessState;
  private readonly exitPromise: Promise<ExitInfo>;

  constructor(
    readonly containerId: string,
    /** '' for the init process. */
    readonly execId: string,
    readonly stdio: StdioPaths,
    readonly instance: WasmInstance,
    onExit: (process: Process, exit: ExitInfo) => void,
  ) {
    this.current = new CreatedState(instance);
    this.exitPromise = instance.exited.then((exit) => {
      this.current = this.current.exited(exit);
      onExit(this, exit);
      return exit;
    });
  }

  get pid(): number {
    return this.instance.pid;
  }

  get state(): ProcessState {
    return this.current;
  }

  get exit(): ExitInfo | undefined {
    const s = this.current;
    return s instanceof StoppedState || s instanceof DeletedState ? s.exit : undefined;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  start(): void {
    this.current = this.current.start();
  }

  kill(signal: number): void {
    this.current.kill(signal);
  }

  pause(): void {
    this.current = this.current.pause();
  }

  resume(): void {
    this.current = this.current.resume();
  }

  wait(): Promise<ExitInfo> {
    return this.exitPromise;
  }

  /** Deletes a stopped process; a created one (never started) is killed first, as runc does. */
  async delete(): Promise<ExitInfo> {
    if (this.current instanceof CreatedState) {
      this.current.kill(SIGKILL);
      await this.exitPromise;
    }
    const deleted = this.current.delete();
    this.current = deleted;
    return deleted.exit;
  }

  closeStdin(): void {
    this.instance.closeStdin();
  }
}
