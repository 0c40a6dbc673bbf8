// The Wasm child: prepares one module (open stdio, compile, instantiate),
// reports ready, runs it when told, and exits with its status. It loads
// nothing but node:wasi and node:fs, because it sits on Create's path; a
// component (WASI 0.2) goes to component.ts, which loads jco and the shim.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { WASI } from 'node:wasi';
import { SpanRecorder, SpanStatusCode, type ActiveSpan, type SpanRecord } from '../telemetry/recorder.js';
import { parseTraceContext } from '../telemetry/traceparent.js';
import {
  ATTR_CONTAINER_ID,
  ATTR_ERROR_TYPE,
  ATTR_PROCESS_EXIT_CODE,
  ATTR_WASM_MODULE_PATH,
  ATTR_WASM_MODULE_SHA256,
  ATTR_WASM_MODULE_SIZE,
  ATTR_WASM_TRAP,
  ATTR_WASMTS_EXEC_ID,
} from '../telemetry/semconv.js';
import { confinePaths } from './confine.js';
import { PAUSE_MODULE } from './pause-module.js';
import { callEntry, entryProblem, interceptProcExit } from './entry-call.js';
import type { ChildJob, FromChild, ToChild } from './protocol.js';
import { SETUP_EXIT_STATUS, TRAP_EXIT_STATUS } from './protocol.js';
import { wasmKind } from './wasm-kind.js';

interface Prepared {
  run(): number;
  stderrFd: number;
}

/** Spans of this child (compile, instantiate, run), relayed to the daemon, which exports them. */
const finished: SpanRecord[] = [];
let recorder: SpanRecorder | undefined;
let traceParent: ReturnType<typeof parseTraceContext>;
let baseAttributes: Record<string, string | number> = {};

function startSpan(name: string): ActiveSpan | undefined {
  return recorder?.startSpan(name, { parent: traceParent ?? null, attributes: baseAttributes });
}

/** Hands finished spans to the daemon; bounded, so a stuck channel never holds up an exit. */
function relaySpans(timeoutMs: number): Promise<void> {
  if (finished.length === 0) return Promise.resolve();
  const records = finished.splice(0);
  return Promise.race([send({ t: 'spans', records }), new Promise<void>((r) => setTimeout(r, timeoutMs))]);
}

let prepared: Prepared | undefined;
let running = false;

function send(message: FromChild): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

function openOutput(target: string): number {
  if (!target) return fs.openSync('/dev/null', 'w');
  if (target.startsWith('file://')) return fs.openSync(decodeURIComponent(target.slice(7)), 'a', 0o640);
  // A FIFO opened read-write never blocks on open and never fails with EPIPE.
  return fs.openSync(target, fs.constants.O_RDWR);
}

function envObject(list: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of list) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

async function prepare(job: ChildJob): Promise<Prepared> {
  const recordUnder = job.trace?.recordUnder;
  if (recordUnder) {
    // The daemon sampled the parent: the child follows its decision (parent-based).
    traceParent = parseTraceContext(recordUnder.traceparent, recordUnder.tracestate);
    recorder = new SpanRecorder((rec) => finished.push(rec), { enabled: true, process: 'child', pid: process.pid });
    baseAttributes = {
      [ATTR_CONTAINER_ID]: job.containerId,
      ...(job.execId ? { [ATTR_WASMTS_EXEC_ID]: job.execId } : {}),
      [ATTR_WASM_MODULE_PATH]: job.args[0] ?? job.modulePath,
    };
  }
  const stdoutFd = openOutput(job.stdout);
  const stderrFd = job.stderr === job.stdout && job.stdout ? stdoutFd : openOutput(job.stderr);
  const bytes = fs.readFileSync(job.modulePath);
  const env = envObject(job.env);
  // The module sees exactly the spec's env, plus the propagated context (TRACEPARENT, TRACECONTEXT, …).
  Object.assign(env, job.trace?.env);
  if (wasmKind(bytes) === 'component') {
    const { prepareComponent } = await import('./component.js');
    const component = await prepareComponent({ job, bytes, env, stdoutFd, stderrFd, startSpan });
    if (job.user) dropPrivileges(job.user);
    return { stderrFd, run: () => component.run() };
  }
  const compileSpan = startSpan('wasm.compile');
  if (compileSpan?.isRecording()) {
    compileSpan.setAttributes({
      [ATTR_WASM_MODULE_SIZE]: bytes.length,
      [ATTR_WASM_MODULE_SHA256]: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (err) {
    compileSpan?.recordException(err).end();
    throw new Error(`${job.modulePath} does not compile: ${(err as Error).message}`, { cause: err });
  }
  compileSpan?.end();
  const instantiateSpan = startSpan('wasm.instantiate');
  const wasi = new WASI({
    version: 'preview1',
    args: job.args,
    env,
    preopens: job.preopens,
    stdin: 0,
    stdout: stdoutFd,
    stderr: stderrFd,
    returnOnExit: true,
  });
  const imports = wasi.getImportObject() as {
    wasi_snapshot_preview1: Record<string, (...a: (number | bigint)[]) => number>;
  };
  interceptProcExit(imports.wasi_snapshot_preview1);
  const confinement = job.preopens['/']
    ? confinePaths(imports.wasi_snapshot_preview1, job.preopens['/'], Object.keys(job.preopens))
    : undefined;
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, imports);
  } catch (err) {
    instantiateSpan?.recordException(err).end();
    throw new Error(`${job.modulePath} cannot be instantiated: ${(err as Error).message}`, { cause: err });
  }
  instantiateSpan?.end();
  const problem = entryProblem(instance, job.exportName);
  if (problem) throw new Error(`${job.modulePath} ${problem}`);
  confinement?.setMemory(instance.exports.memory as WebAssembly.Memory);
  if (job.user) dropPrivileges(job.user);
  return {
    stderrFd,
    run: () => callEntry(wasi, instance, job.exportName),
  };
}

function dropPrivileges(user: NonNullable<ChildJob['user']>): void {
  if (typeof process.setgroups === 'function') process.setgroups(user.additionalGids ?? []);
  process.setgid!(user.gid);
  process.setuid!(user.uid);
}

async function runModule(p: Prepared): Promise<number> {
  const span = startSpan('wasm.run');
  // Should this process be killed while running, the daemon ends the span for it.
  const open = span?.snapshot();
  if (open) await send({ t: 'span-open', span: open });
  const code = runGuarded(p, span);
  span?.setAttribute(ATTR_PROCESS_EXIT_CODE, code);
  if (code !== 0) {
    span?.setAttribute(ATTR_ERROR_TYPE, failure ?? String(code));
    // A trap or error already set ERROR with its message (recordException).
    if (!failure) span?.setStatus(SpanStatusCode.ERROR, `exit status ${code}`);
  }
  span?.end();
  return code;
}

/** How the module failed, when it did not simply exit: the trap kind or the error's name (error.type). */
let failure: string | undefined;

/** V8's trap message as a low-cardinality error.type: "memory access out of bounds" → "memory_access_out_of_bounds". */
function trapKind(message: string): string {
  return (
    message
      .trim()
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_|_$/g, '') || 'trap'
  );
}

function runGuarded(p: Prepared, span: ActiveSpan | undefined): number {
  try {
    return p.run() & 0xff;
  } catch (err) {
    span?.recordException(err);
    const trap = err instanceof WebAssembly.RuntimeError;
    failure = trap ? trapKind(err.message) : (err as Error)?.name || 'Error';
    if (trap) span?.setAttribute(ATTR_WASM_TRAP, err.message);
    // jco's bindings already say "wasm trap: " in a component's trap message.
    const text = trap
      ? `wasm trap: ${err.message.replace(/^wasm trap: /, '')}`
      : `wasm error: ${(err as Error)?.message ?? err}`;
    try {
      fs.writeSync(p.stderrFd, `${text}\n`);
    } catch {
      // stderr gone: the exit status still tells
    }
    return trap ? TRAP_EXIT_STATUS : 1;
  }
}

async function finish(code: number): Promise<never> {
  await relaySpans(500);
  process.exit(code);
}

/**
 * A warm child waits for its job; meanwhile it takes V8's Wasm compiler,
 * instantiation and node:wasi through their first use, which costs several
 * times a later one, so that a Create finds them hot.
 */
async function warmUp(): Promise<void> {
  try {
    const module = await WebAssembly.compile(PAUSE_MODULE);
    const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
    await WebAssembly.instantiate(module, wasi.getImportObject() as unknown as WebAssembly.Imports);
  } catch {
    // only an optimisation
  }
}
void warmUp();

process.on('message', (message: ToChild) => {
  if (message.t === 'job') {
    prepare(message.job).then(
      async (p) => {
        prepared = p;
        await send({ t: 'ready' });
        await relaySpans(500);
      },
      async (err: unknown) => {
        await send({ t: 'error', message: err instanceof Error ? err.message : String(err) });
        await relaySpans(500);
        process.exit(SETUP_EXIT_STATUS);
      },
    );
  } else if (message.t === 'run' && prepared) {
    const p = prepared;
    prepared = undefined;
    running = true;
    // Leave the message handler first so the IPC callback stack is clear.
    setImmediate(() => void runModule(p).then(finish));
  }
});
// The daemon going away must not leave an orphan (a warm child, or one waiting for
// `run`) behind; a running module carries on, as a runc container would.
process.on('disconnect', () => {
  if (!running) process.exit(SETUP_EXIT_STATUS);
});
