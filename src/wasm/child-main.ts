// The Wasm child: prepares one module (open stdio, compile, instantiate),
// reports ready, runs it when told, and exits with its status. It loads
// nothing but node:wasi and node:fs, because it sits on Create's path.
import * as fs from 'node:fs';
import { WASI } from 'node:wasi';
import type { ChildJob, FromChild, ToChild } from './protocol.js';
import { SETUP_EXIT_STATUS, TRAP_EXIT_STATUS } from './protocol.js';

interface Prepared {
  run(): number;
  stderrFd: number;
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
  const stdoutFd = openOutput(job.stdout);
  const stderrFd = job.stderr === job.stdout && job.stdout ? stdoutFd : openOutput(job.stderr);
  const bytes = fs.readFileSync(job.modulePath);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (err) {
    throw new Error(`${job.modulePath} does not compile: ${(err as Error).message}`);
  }
  const env = envObject(job.env);
  // The module sees exactly the spec's env, plus the trace context when tracing is on.
  if (job.traceparent) {
    env.TRACECONTEXT = job.traceparent;
    process.env.TRACECONTEXT = job.traceparent;
  }
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
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, wasi.getImportObject() as WebAssembly.Imports);
  } catch (err) {
    throw new Error(`${job.modulePath} cannot be instantiated: ${(err as Error).message}`);
  }
  const exported = instance.exports[job.exportName];
  if (typeof exported !== 'function') {
    throw new Error(`${job.modulePath} has no exported function "${job.exportName}"`);
  }
  if (!(instance.exports.memory instanceof WebAssembly.Memory)) {
    throw new Error(`${job.modulePath} does not export its memory, which WASI needs`);
  }
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
  try {
    return p.run() & 0xff;
  } catch (err) {
    const trap = err instanceof WebAssembly.RuntimeError;
    const text = trap ? `wasm trap: ${(err as Error).message}` : `wasm error: ${(err as Error)?.message ?? err}`;
    try {
      fs.writeSync(p.stderrFd, `${text}\n`);
    } catch {
      // stderr gone: the exit status still tells
    }
    return trap ? TRAP_EXIT_STATUS : 1;
  }
}

async function finish(code: number): Promise<never> {
  process.exit(code);
}

process.on('message', (message: ToChild) => {
  if (message.t === 'job') {
    prepare(message.job).then(
      (p) => {
        prepared = p;
        return send({ t: 'ready' });
      },
      async (err: unknown) => {
        await send({ t: 'error', message: err instanceof Error ? err.message : String(err) });
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
