// The Wasm child: prepares one module (open stdio, compile, instantiate),
// reports ready, runs it when told, and exits with its status. It loads
// nothing but node:wasi and node:fs, because it sits on Create's path; a
// component (WASI 0.2) goes to component.ts, which loads jco and the shim.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { WASI } from 'node:wasi';
import { SpanRecorder, type ActiveSpan, type SpanRecord } from '../telemetry/recorder.js';
import { parseTraceparent } from '../telemetry/traceparent.js';
import { confinePaths } from './confine.js';
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
let traceParent: ReturnType<typeof parseTraceparent>;
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
  if (job.traceparent) {
    traceParent = parseTraceparent(job.traceparent);
    recorder = new SpanRecorder((rec) => finished.push(rec), { enabled: true, process: 'child', pid: process.pid });
    baseAttributes = { 'container.id': job.containerId, ...(job.execId ? { 'wasmts.exec_id': job.execId } : {}), 'wasm.module.path': job.args[0] ?? job.modulePath };
  }
  const stdoutFd = openOutput(job.stdout);
  const stderrFd = job.stderr === job.stdout && job.stdout ? stdoutFd : openOutput(job.stderr);
  const bytes = fs.readFileSync(job.modulePath);
  const env = envObject(job.env);
  // The module sees exactly the spec's env, plus the trace context when tracing is on.
  if (job.traceparent) {
    env.TRACECONTEXT = job.traceparent;
    process.env.TRACECONTEXT = job.traceparent;
  }
  if (wasmKind(bytes) === 'component') {
    const { prepareComponent } = await import('./component.js');
    const component = await prepareComponent({ job, bytes, env, stdoutFd, stderrFd, startSpan });
    if (job.user) dropPrivileges(job.user);
    return { stderrFd, run: () => component.run() };
  }
  const compileSpan = startSpan('wasm.compile');
  compileSpan?.setAttributes({ 'wasm.module.size': bytes.length, 'wasm.module.sha256': createHash('sha256').update(bytes).digest('hex') });
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (err) {
    compileSpan?.recordException(err).end();
    throw new Error(`${job.modulePath} does not compile: ${(err as Error).message}`);
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
  const imports = wasi.getImportObject() as { wasi_snapshot_preview1: Record<string, (...a: (number | bigint)[]) => number> };
  const confinement = job.preopens['/']
    ? confinePaths(imports.wasi_snapshot_preview1, job.preopens['/'], Object.keys(job.preopens))
    : undefined;
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, imports as unknown as WebAssembly.Imports);
  } catch (err) {
    instantiateSpan?.recordException(err).end();
    throw new Error(`${job.modulePath} cannot be instantiated: ${(err as Error).message}`);
  }
  instantiateSpan?.end();
  const exported = instance.exports[job.exportName];
  if (typeof exported !== 'function') {
    throw new Error(`${job.modulePath} has no exported function "${job.exportName}"`);
  }
  if (!(instance.exports.memory instanceof WebAssembly.Memory)) {
    throw new Error(`${job.modulePath} does not export its memory, which WASI needs`);
  }
  confinement?.setMemory(instance.exports.memory);
  if (job.user) dropPrivileges(job.user);
  return {
    stderrFd,
    run() {
      if (job.exportName === '_start') return wasi.start(instance) ?? 0;
      if (typeof instance.exports._initialize === 'function') wasi.initialize(instance);
      const result = (exported as () => unknown)();
      return typeof result === 'number' ? result : 0;
    },
  };
}

function dropPrivileges(user: NonNullable<ChildJob['user']>): void {
  if (typeof process.setgroups === 'function') process.setgroups(user.additionalGids ?? []);
  process.setgid!(user.gid);
  process.setuid!(user.uid);
}

function runModule(p: Prepared): number {
  const span = startSpan('wasm.run');
  const code = runGuarded(p, span);
  span?.setAttribute('wasmts.exit_status', code).end();
  return code;
}

function runGuarded(p: Prepared, span: ActiveSpan | undefined): number {
  try {
    return p.run() & 0xff;
  } catch (err) {
    span?.recordException(err);
    const trap = err instanceof WebAssembly.RuntimeError;
    // jco's bindings already say "wasm trap: " in a component's trap message.
    const text = trap ? `wasm trap: ${(err as Error).message.replace(/^wasm trap: /, '')}` : `wasm error: ${(err as Error)?.message ?? err}`;
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
    setImmediate(() => void finish(runModule(p)));
  }
});
// The daemon going away must not leave an orphan (a spare, or one waiting for
// `run`) behind; a running module carries on, as a runc container would.
process.on('disconnect', () => {
  if (!running) process.exit(SETUP_EXIT_STATUS);
});
