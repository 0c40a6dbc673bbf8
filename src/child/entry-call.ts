// How the child calls a module's entry under node:wasi: `_start` or any other
// export, on command and reactor modules alike, as wasmtime does.
import type { WASI } from 'node:wasi';

type WasiImports = Record<string, (...args: (number | bigint)[]) => unknown>;

/** Thrown by proc_exit to unwind the module's frames; carries the status. */
class ProcExit extends Error {
  constructor(readonly status: number) {
    super(`proc_exit(${status})`);
  }
}

/**
 * Makes proc_exit unwind to callEntry with its status, from `_start` and from
 * any other export (node:wasi's own returnOnExit is only caught by start()).
 * Must run before instantiation: the module binds its imports then.
 */
export function interceptProcExit(wasiImports: WasiImports): void {
  wasiImports.proc_exit = (code) => {
    throw new ProcExit(Number(code) >>> 0);
  };
}

/** An entry must be callable without arguments; the message says why not. */
export function entryProblem(instance: WebAssembly.Instance, exportName: string): string | undefined {
  const entry = instance.exports[exportName];
  if (typeof entry !== 'function') return `has no exported function "${exportName}"`;
  // An exported Wasm function's length is its parameter count.
  if (entry.length > 0) return `export "${exportName}" takes ${entry.length} parameter(s); an entry point takes none`;
  if (!(instance.exports.memory instanceof WebAssembly.Memory)) return 'does not export its memory, which WASI needs';
  return undefined;
}

/**
 * Runs the entry; returns the exit status: proc_exit's, or 0 when the entry
 * returns (a returned value is not a status). Traps and other errors throw.
 */
export function callEntry(wasi: WASI, instance: WebAssembly.Instance, exportName: string): number {
  const exports = instance.exports;
  try {
    // node:wasi serves no system call before start() or initialize() has seen
    // the memory; start() calls _start itself, and initialize() refuses a
    // module that has _start. So it gets only the memory, and we call.
    wasi.initialize({ exports: { memory: exports.memory } });
    // A reactor's _initialize runs its constructors before any other export.
    if (exportName !== '_initialize' && typeof exports._initialize === 'function')
      (exports._initialize as () => void)();
    (exports[exportName] as () => unknown)();
    return 0;
  } catch (err) {
    if (err instanceof ProcExit) return err.status;
    throw err;
  }
}
