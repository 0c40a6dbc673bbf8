// `make demo`: from a fresh checkout to a traced Wasm container, in one command.
//
//   node --import tsx scripts/demo.ts [options] [-- <demo module args>]
//
// 1. set-up (unless --skip-setup): scripts/ensure-deps.sh (Debian packages,
//    npm packages), `make build`, `make install`;
// 2. the built-in OTLP trace receiver + viewer, in this process (HTTP 4318,
//    gRPC 4317; a free port instead when one is busy);
// 3. a private containerd under a temp dir, its OTEL_EXPORTER_OTLP_ENDPOINT
//    pointing at the receiver (a system containerd is never touched);
// 4. demo/demo.wasm built with clang, packed as an OCI image, imported with
//    `ctr image import --all-platforms`, run with `ctr run --rm --runtime
//    io.containerd.wasmts.v1`;
// 5. the container's trace as a terminal waterfall, and the viewer's address.
//
// Cleans up (containerd stopped, shims gone, temp dir removed) on success,
// failure, Ctrl-C and SIGTERM. On a terminal it keeps containerd and the viewer
// up until Ctrl-C (--keep); otherwise (CI) it exits after printing (--no-keep).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../src/otlp/receiver.js';
import { handleViewerRequest } from '../src/viewer/web.js';
import { packImage } from '../src/image/oci.js';
import { renderWaterfall } from '../src/viewer/waterfall.js';
import {
  BIN_DIR,
  isOtelVariable,
  killTree,
  processAlive,
  processesUnder,
  REPO,
  RUNTIME,
  SHIM_NAME,
  sleep,
  startContainerd,
  unmountAll,
  type Containerd,
} from '../test/harness/index.js';

const IMAGE_REF = 'docker.io/library/wasmts-demo:latest';
const MODULE_DEST = '/demo.wasm';
const DEMO_SRC = path.join(REPO, 'demo', 'demo.c');
const DEMO_WASM = path.join(REPO, 'demo', 'demo.wasm');
const DEFAULT_ARGS = ['echo', 'hello from a Wasm container'];
const DEFAULT_HTTP_PORT = 4318;
const DEFAULT_GRPC_PORT = 4317;
/** How long the shim gets to export the container's spans after `ctr run` returns. */
const TRACE_WAIT_MS = 15_000;
/** A trace counts as complete when no span arrived for this long. */
const SETTLE_MS = 500;
/** A step's subprocess that prints nothing for this long gets a "still working" line. */
const HEARTBEAT_MS = 20_000;
const CLEANUP_TIMEOUT_MS = 30_000;

const USAGE = `Usage: node --import tsx scripts/demo.ts [options] [-- <demo args>]
       make demo [DEMO_FLAGS="<options>"]

Sets up wasmts (Debian packages, npm packages, build, make install), starts the
built-in trace viewer and a private containerd, runs demo/demo.wasm as a Wasm
container and prints its trace as a waterfall. Run as root.

Options:
  --keep, --no-keep   keep containerd and the trace viewer up after the run until
                      Ctrl-C (default: --keep when stdout is a terminal)
  --http-port <port>  OTLP/HTTP + web viewer port (default 4318, a free port if
                      that one is busy; 0 = any free port)
  --grpc-port <port>  OTLP/gRPC port (default 4317, likewise; 0 = any; off = none)
  --host <addr>       address the receiver listens on (default 127.0.0.1)
  --skip-setup        skip ensure-deps, make build and make install; use the
                      shim in this checkout's bin/ (needs make build)
  --shim-dir <dir>    directory holding ${SHIM_NAME}, put first on
                      containerd's PATH (default /usr/local/bin, or bin/ with
                      --skip-setup)
  --color, --no-color ANSI colours (default: on for a terminal)
  -h, --help          this text

<demo args> are the demo module's arguments (default: echo "hello from a Wasm
container"); try "-- sleep 2", "-- exit 3", or "-- daemon" (Ctrl-C to stop).
`;

// ---------------------------------------------------------------------------
// options

class UsageError extends Error {}

interface Options {
  keep: boolean;
  httpPort: number;
  httpPortGiven: boolean;
  grpcPort: number | null;
  grpcPortGiven: boolean;
  host: string;
  skipSetup: boolean;
  shimDir: string;
  color: boolean;
  width: number;
  moduleArgs: string[];
}

function portValue(v: string, flag: string, allowOff: boolean): number | null {
  if (allowOff && /^(off|none)$/i.test(v)) return null;
  if (!/^\d+$/.test(v) || Number(v) > 65535)
    throw new UsageError(`${flag} wants a port number (0-65535)${allowOff ? ' or off' : ''}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      keep: { type: 'boolean' },
      'no-keep': { type: 'boolean' },
      'http-port': { type: 'string' },
      'grpc-port': { type: 'string' },
      host: { type: 'string' },
      'skip-setup': { type: 'boolean' },
      'shim-dir': { type: 'string' },
      color: { type: 'boolean' },
      'no-color': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (values.keep && values['no-keep']) throw new UsageError('--keep and --no-keep do not go together');
  const skipSetup = !!values['skip-setup'];
  const tty = !!process.stdout.isTTY;
  return {
    keep: values.keep ? true : values['no-keep'] ? false : tty,
    httpPort:
      values['http-port'] === undefined ? DEFAULT_HTTP_PORT : portValue(values['http-port'], '--http-port', false)!,
    httpPortGiven: values['http-port'] !== undefined,
    grpcPort:
      values['grpc-port'] === undefined ? DEFAULT_GRPC_PORT : portValue(values['grpc-port'], '--grpc-port', true),
    grpcPortGiven: values['grpc-port'] !== undefined,
    host: values.host ?? '127.0.0.1',
    skipSetup,
    shimDir: path.resolve(values['shim-dir'] ?? (skipSetup ? BIN_DIR : '/usr/local/bin')),
    color: values['no-color'] ? false : values.color ? true : tty && !process.env.NO_COLOR,
    width: process.stdout.columns && process.stdout.columns > 0 ? process.stdout.columns : 120,
    moduleArgs: positionals.length ? positionals : DEFAULT_ARGS,
  };
}

// ---------------------------------------------------------------------------
// output

let color = false;
const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = (s: string): string => paint('1', s);
const dim = (s: string): string => paint('2', s);
const green = (s: string): string => paint('32', s);
const red = (s: string): string => paint('31', s);
const INDENT = '      ';

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}
function detail(line: string): void {
  say(`${INDENT}${line}`);
}
/** "12 ms", "1.3 s", "2m05s". */
function elapsed(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
function since(t0: number): string {
  return elapsed(Date.now() - t0);
}

/** Shell-quotes one argument for display. */
function q(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
}
const shellLine = (argv: string[]): string => argv.map(q).join(' ');

class Steps {
  private n = 0;
  private t = 0;
  constructor(private readonly total: number) {}
  start(title: string): void {
    this.n++;
    this.t = Date.now();
    say(`${bold(`[${this.n}/${this.total}]`)} ${bold(title)}`);
  }
  done(note = ''): void {
    detail(`${green('✓')} ${dim(`${since(this.t)}${note ? ` · ${note}` : ''}`)}`);
  }
}

// ---------------------------------------------------------------------------
// processes we started (killed on interruption)

const children = new Set<ChildProcess>();

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

/** Runs a command, its output indented under the current step; rejects on a non-zero exit. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = track(
      spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const t0 = Date.now();
    let last = Date.now();
    const tail: string[] = [];
    const heartbeat = setInterval(() => {
      if (Date.now() - last >= HEARTBEAT_MS) {
        detail(dim(`… still working (${since(t0)})`));
        last = Date.now();
      }
    }, 1000);
    const pipe = (stream: NodeJS.ReadableStream): void => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) {
          if (l.trim() === '' || /^npm warn Unknown user config/.test(l)) continue;
          detail(dim(l));
          tail.push(l);
          if (tail.length > 20) tail.shift();
          last = Date.now();
        }
      });
      stream.on('end', () => {
        if (buf.trim()) detail(dim(buf));
      });
    };
    pipe(c.stdout!);
    pipe(c.stderr!);
    c.on('error', (err) => {
      clearInterval(heartbeat);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    c.on('close', (code, signal) => {
      clearInterval(heartbeat);
      if (code === 0) resolve();
      else reject(new Error(`${shellLine([cmd, ...args])} failed (${signal ?? `exit status ${code}`})`));
    });
  });
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------
// set-up

/** The Debian packages scripts/ensure-deps.sh would install now (undefined when it cannot tell). */
function missingPackages(): string[] | undefined {
  try {
    const script = fs.readFileSync(path.join(REPO, 'scripts', 'ensure-deps.sh'), 'utf8');
    const m = /^packages=\(([\s\S]*?)\)/m.exec(script);
    if (!m) return undefined;
    const pkgs = m[1].split(/\s+/).filter(Boolean);
    return pkgs.filter(
      (p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout !== 'install ok installed',
    );
  } catch {
    return undefined;
  }
}

async function setup(steps: Steps, opts: Options): Promise<void> {
  const missing = missingPackages();
  steps.start('Dependencies: scripts/ensure-deps.sh');
  if (missing === undefined)
    detail('installs missing Debian packages with apt-get (a few minutes on a fresh machine) and npm packages');
  else if (missing.length)
    detail(`apt-get will install ${missing.join(', ')}: this takes a few minutes, with a line per package`);
  else detail('Debian packages already installed; npm packages next');
  await run('bash', [path.join(REPO, 'scripts', 'ensure-deps.sh')]);
  steps.done();

  if (!have('make'))
    throw new Error('make is not installed (apt-get install -y make), or run with --skip-setup after building by hand');
  steps.start('Building the shim: make build');
  await run('make', ['--no-print-directory', 'build']);
  steps.done();

  steps.start(`Installing the shim: make install → ${path.join(opts.shimDir, SHIM_NAME)}`);
  await run('make', ['--no-print-directory', 'install']);
  steps.done();
}

// ---------------------------------------------------------------------------
// receiver

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

async function startReceiver(opts: Options): Promise<OtlpReceiver> {
  let httpPort: number = opts.httpPort;
  let grpcPort: number | null = opts.grpcPort;
  const busy = (what: string, port: number): void =>
    detail(`port ${port} (${what}) is busy: using a free port instead`);
  if (httpPort !== 0 && !opts.httpPortGiven && !(await portFree(opts.host, httpPort))) {
    busy('OTLP/HTTP', httpPort);
    httpPort = 0;
  }
  if (grpcPort !== null && grpcPort !== 0 && !opts.grpcPortGiven && !(await portFree(opts.host, grpcPort))) {
    busy('OTLP/gRPC', grpcPort);
    grpcPort = 0;
  }
  for (let attempt = 0; ; attempt++) {
    try {
      return await startOtlpReceiver({ host: opts.host, httpPort, grpcPort, routes: handleViewerRequest });
    } catch (err) {
      const e = err as Error & { code?: string };
      // Taken between the probe and the bind: fall back once more for a default port.
      if (attempt < 2 && e.code === 'EADDRINUSE') {
        if (/OTLP\/HTTP/.test(e.message) && httpPort !== 0 && !opts.httpPortGiven) {
          busy('OTLP/HTTP', httpPort);
          httpPort = 0;
          continue;
        }
        if (/OTLP\/gRPC/.test(e.message) && grpcPort && !opts.grpcPortGiven) {
          busy('OTLP/gRPC', grpcPort);
          grpcPort = 0;
          continue;
        }
        throw new Error(`${e.message} (pass 0, or leave the flag out, for a free port)`, { cause: err });
      }
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------
// traces

function containerRoot(spans: ReceivedSpan[], id: string): ReceivedSpan | undefined {
  return spans.find((s) => s.name === 'wasmts.container' && s.attributes['container.id'] === id);
}

/** Waits for the container's trace (its root span and wasm.run), then until it is quiet. */
async function waitForTrace(rx: OtlpReceiver, id: string, wantRun: boolean): Promise<string | undefined> {
  try {
    await rx.waitFor((all) => {
      const root = containerRoot(all, id);
      return !!root && (!wantRun || all.some((s) => s.traceId === root.traceId && s.name === 'wasm.run'));
    }, TRACE_WAIT_MS);
  } catch {
    // print what did arrive
  }
  const root = containerRoot(rx.spans(), id);
  const traceId = root?.traceId ?? rx.spans().find((s) => s.attributes['container.id'] === id)?.traceId;
  if (!traceId) return undefined;
  // Let the last batch (Shutdown, sent as the shim exits) arrive.
  let count = -1;
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const n = rx.trace(traceId).length;
    if (n === count) break;
    count = n;
    await sleep(SETTLE_MS);
  }
  return traceId;
}

// ---------------------------------------------------------------------------
// state and cleanup

let opts!: Options;
let rx: OtlpReceiver | undefined;
let ctd: Containerd | undefined;
let workDir: string | undefined;
let interrupted: NodeJS.Signals | undefined;
let cleanupPromise: Promise<void> | undefined;
let stopKeeping: (() => void) | undefined;
let keepStopped = false;
/** A SIGINT arrived (Ctrl-C on a terminal signals the whole foreground process group). */
let terminalSignal = false;
const timers = new Set<NodeJS.Timeout>();

/** Last resort on any exit: kill what refers to our dir, unmount it, remove it. Synchronous. */
function syncCleanup(): void {
  if (!workDir || !fs.existsSync(workDir)) return;
  const dir = workDir;
  try {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    killTree(processesUnder(dir).map((p) => p.pid));
    unmountAll(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}

function cleanup(): Promise<void> {
  cleanupPromise ??= (async () => {
    for (const t of timers) clearTimeout(t);
    const t0 = Date.now();
    const did: string[] = [];
    const work = (async () => {
      // A running `ctr run` forwards SIGTERM to its task: the module stops the way `ctr task kill` would stop it.
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      if (ctd) {
        // Ctrl-C on a terminal also reaches containerd (it shares our process group) and it exits at
        // once; let that happen first, or stop() would wait out ctr timeouts against a dying daemon.
        if (terminalSignal) for (let i = 0; i < 10 && processAlive(ctd.pid); i++) await sleep(50);
        await sleep(20);
        await ctd.stop();
        did.push('containerd stopped');
      }
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      if (rx) {
        await rx.close();
        did.push('trace receiver closed');
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      work.catch((err: unknown) => say(red(`cleanup: ${(err as Error).message}`))),
      new Promise<void>((r) => (timer = setTimeout(r, CLEANUP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (workDir && fs.existsSync(workDir)) {
      const left = processesUnder(workDir);
      if (left.length) did.push(`killed ${left.length} leftover process(es)`);
      syncCleanup();
      did.push(`${workDir} removed`);
    }
    if (did.length) say(dim(`cleaned up: ${did.join(', ')} (${since(t0)})`));
  })();
  return cleanupPromise;
}

function onSignal(sig: NodeJS.Signals): void {
  if (sig === 'SIGINT') terminalSignal = true;
  if (stopKeeping) {
    // --keep: Ctrl-C is how the demo ends.
    const stop = stopKeeping;
    stopKeeping = undefined;
    keepStopped = true;
    say('');
    stop();
    return;
  }
  if (interrupted || keepStopped) {
    say(red(`${sig} again: cleaning up forcibly`));
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15));
  }
  interrupted = sig;
  say('');
  say(red(`${sig === 'SIGINT' ? 'Interrupted (Ctrl-C)' : `Got ${sig}`}: cleaning up…`));
  void cleanup().then(() => process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15)));
}

// ---------------------------------------------------------------------------
// the demo

function tryMore(c: Containerd, dir: string): string[] {
  // An alias rather than CONTAINERD_ADDRESS: a line pasted without it fails instead of reaching a system containerd.
  const snap = c.snapshotter === 'overlayfs' ? '' : `CONTAINERD_SNAPSHOTTER=${c.snapshotter} `;
  const log = path.join(dir, 'ticker.log');
  return [
    `alias demo-ctr='${snap}ctr --address ${c.address}'   ${dim('# this private containerd')}`,
    `${shellLine(['demo-ctr', 'run', '-d', '--runtime', RUNTIME, '--log-uri', `file://${log}`, IMAGE_REF, 'ticker'])}   ${dim('# daemon mode: a line a second')}`,
    `tail -f ${log}`,
    `demo-ctr task ls; demo-ctr task kill ticker   ${dim('# SIGTERM; exit status 143')}`,
    `demo-ctr task rm ticker; demo-ctr container rm ticker   ${dim('# ends its trace: it shows up here and in the viewer')}`,
    `${shellLine(['demo-ctr', 'run', '--rm', '--runtime', RUNTIME, IMAGE_REF, 'once', MODULE_DEST, 'exit', '3'])}; echo "exit status $?"`,
  ];
}

async function runContainer(c: Containerd, id: string, args: string[]): Promise<{ code: number; ctrError: string }> {
  const child = track(
    c.ctrSpawn(['run', '--rm', '--runtime', RUNTIME, IMAGE_REF, id, MODULE_DEST, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const ctrErrors: string[] = [];
  const show = (stream: NodeJS.ReadableStream, isErr: boolean): void => {
    let buf = '';
    stream.setEncoding('utf8');
    const line = (l: string): void => {
      if (isErr && /^ctr: /.test(l)) ctrErrors.push(l);
      detail(`${dim('│')} ${isErr ? paint('33', l) : l}`);
    };
    stream.on('data', (chunk: string) => {
      buf += chunk;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) line(l);
    });
    stream.on('end', () => {
      if (buf) line(buf);
    });
  };
  show(child.stdout!, false);
  show(child.stderr!, true);
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
  });
  return { code, ctrError: ctrErrors.join('\n') };
}

async function main(argv: string[]): Promise<number> {
  const t0 = Date.now();
  try {
    const o = parseOptions(argv);
    if (o === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    opts = o;
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  color = opts.color;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  process.on('exit', syncCleanup);

  say(bold('wasmts demo: a WASI module as a containerd container, traced with OpenTelemetry'));
  if (process.getuid?.() !== 0) {
    say(red('The demo runs containerd, which needs root: run it as root (sudo make demo).'));
    return 1;
  }
  const steps = new Steps(opts.skipSetup ? 7 : 10);
  if (opts.skipSetup) say(dim(`(--skip-setup: no apt, npm or make install; the shim comes from ${opts.shimDir})`));

  if (!opts.skipSetup) await setup(steps, opts);
  if (interrupted) return 130;
  const shim = path.join(opts.shimDir, SHIM_NAME);
  if (!fs.existsSync(shim))
    throw new Error(
      `${shim} is missing (${opts.skipSetup ? 'run make build first' : 'make install did not put it there; pass --shim-dir'})`,
    );
  if (
    opts.skipSetup &&
    fs.realpathSync(opts.shimDir) === fs.realpathSync(BIN_DIR) &&
    !fs.existsSync(path.join(REPO, 'dist', 'shim.cjs'))
  ) {
    throw new Error('dist/shim.cjs is missing: run make build first');
  }
  for (const tool of ['containerd', 'ctr', 'clang']) {
    if (!have(tool))
      throw new Error(`${tool} is not installed: run scripts/ensure-deps.sh (or the demo without --skip-setup)`);
  }

  // 1. the trace receiver
  steps.start('Starting the trace receiver (OTLP over HTTP and gRPC, plus a web viewer), in this process');
  rx = await startReceiver(opts);
  detail(`OTLP/HTTP ${rx.httpUrl}/v1/traces${rx.grpcUrl ? ` · OTLP/gRPC ${rx.grpcUrl}` : ''} · viewer ${rx.httpUrl}/`);
  steps.done();
  if (interrupted) return 130;

  // 2. a private containerd
  steps.start('Starting a private containerd under a temp dir (a system containerd is not touched)');
  const baseTmp = tmpdir();
  workDir = fs.mkdtempSync(path.join(baseTmp, 'wasmts-demo-'));
  // The tracing env reaches the shims through containerd's environment, as in a real install.
  const ignored = Object.keys(process.env).filter(isOtelVariable);
  for (const k of ignored) delete process.env[k];
  if (ignored.length) detail(dim(`(not passing your ${ignored.join(', ')} to it)`));
  const otelEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl, OTEL_BSP_SCHEDULE_DELAY: '200' };
  // Nested in our dir, so one dir holds everything.
  ctd = await startContainerd({
    name: 'demo',
    shimDir: opts.shimDir,
    parentDir: workDir,
    env: { ...otelEnv, TMPDIR: process.env.TMPDIR ?? baseTmp },
  });
  detail(`dir ${workDir}`);
  detail(`socket ${ctd.address} · pid ${ctd.pid} · snapshotter ${ctd.snapshotter}`);
  detail(
    `env ${Object.entries(otelEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  detail(`${RUNTIME} → ${shim}`);
  steps.done();
  if (interrupted) return 130;

  // 3. the module
  steps.start('Building demo/demo.wasm from demo/demo.c with clang (wasm32-wasi)');
  const stale = !fs.existsSync(DEMO_WASM) || fs.statSync(DEMO_SRC).mtimeMs > fs.statSync(DEMO_WASM).mtimeMs;
  if (stale) {
    const clang = process.env.CLANG || 'clang';
    const sysroot = process.env.WASI_SYSROOT ? [`--sysroot=${process.env.WASI_SYSROOT}`] : [];
    const tmpOut = `${DEMO_WASM}.tmp.${process.pid}`;
    const args = ['--target=wasm32-wasi', ...sysroot, '-O2', '-Wall', '-Wl,--strip-debug', '-o', tmpOut, DEMO_SRC];
    detail(
      dim(
        shellLine([clang, ...args.map((a) => (a === tmpOut ? 'demo/demo.wasm' : a === DEMO_SRC ? 'demo/demo.c' : a))]),
      ),
    );
    try {
      await run(clang, args);
      fs.renameSync(tmpOut, DEMO_WASM);
    } finally {
      fs.rmSync(tmpOut, { force: true });
    }
  }
  steps.done(`${fs.statSync(DEMO_WASM).size} bytes${stale ? '' : ', up to date'}`);

  // 4. the image
  steps.start(`Packing it as an OCI image: ${IMAGE_REF}`);
  const tar = path.join(workDir, 'wasmts-demo.tar');
  const img = await packImage({
    module: DEMO_WASM,
    ref: IMAGE_REF,
    moduleDest: MODULE_DEST,
    output: tar,
    annotations: {
      'org.opencontainers.image.title': 'wasmts demo',
      'org.opencontainers.image.description': 'demo/demo.c built for wasm32-wasi',
    },
  });
  detail(`entrypoint ${MODULE_DEST} · platform wasip1/wasm · ${img.digest.slice(0, 19)}…`);
  detail(
    dim(
      `(the same by hand: bin/wasmts image --ref wasmts-demo:latest --module-dest ${MODULE_DEST} --out wasmts-demo.tar demo/demo.wasm)`,
    ),
  );
  steps.done();
  if (interrupted) return 130;

  // 5. import
  steps.start('Importing it: ctr image import --all-platforms wasmts-demo.tar');
  const imported = await ctd.importImage(tar);
  for (const l of `${imported.stdout}${imported.stderr}`.split('\n')) if (l.trim()) detail(dim(l.trim()));
  steps.done();
  if (interrupted) return 130;

  // 6. run
  const id = `hello-${randomBytes(3).toString('hex')}`;
  steps.start(
    `Running it: ${shellLine(['ctr', 'run', '--rm', '--runtime', RUNTIME, IMAGE_REF, id, MODULE_DEST, ...opts.moduleArgs])}`,
  );
  const { code, ctrError } = await runContainer(ctd, id, opts.moduleArgs);
  if (interrupted) return 130;
  if (ctrError) {
    const log = ctd
      .log(20_000)
      .split('\n')
      .filter((l) => /level=(warn|error|fatal)/.test(l) && !/devmapper|aufs|btrfs|zfs|blockfile/.test(l))
      .slice(-10);
    throw new Error(
      `ctr run failed (exit status ${code}): ${ctrError}${log.length ? `\ncontainerd log (${ctd.logPath}):\n${log.join('\n')}` : ''}`,
    );
  }
  steps.done(`exit status ${code}`);

  // 7. the trace
  steps.start('Its trace: the spans the shim and the Wasm child exported to the receiver');
  const traceId = await waitForTrace(rx, id, true);
  if (interrupted) return 130;
  if (!traceId) {
    const log = ctd
      .log(20_000)
      .split('\n')
      .filter((l) => /level=(warn|error)/.test(l) && !/devmapper|aufs|btrfs|zfs|blockfile/.test(l))
      .slice(-10);
    throw new Error(
      `no spans of container ${id} arrived within ${TRACE_WAIT_MS / 1000} s (see "No spans?" under Troubleshooting in README.md)${log.length ? `\ncontainerd log (${ctd.logPath}):\n${log.join('\n')}` : ''}`,
    );
  }
  const spans = rx.trace(traceId);
  say('');
  process.stdout.write(renderWaterfall(spans, { width: opts.width, color: opts.color }));
  say('');
  const missing = ['wasmts.container', 'wasm.run'].filter((n) => !spans.some((s) => s.name === n));
  if (missing.length) say(red(`(incomplete: ${missing.join(', ')} did not arrive within ${TRACE_WAIT_MS / 1000} s)`));
  const page = `${rx.httpUrl}/`;
  say(`${bold('Open it as a web page:')} ${page}  ${dim(`(this trace: ${page}#trace=${traceId})`)}`);
  if (opts.host === '127.0.0.1' || opts.host === 'localhost') {
    const port = new URL(rx.httpUrl).port;
    say(
      dim(`  from another machine: ssh -L ${port}:127.0.0.1:${port} <this host>, then open http://127.0.0.1:${port}/`),
    );
  }

  if (!opts.keep) {
    say('');
    say(dim('Want to try more? Run `make demo` in a terminal: it keeps containerd and the viewer up until Ctrl-C and'));
    say(dim('shows commands to try (a daemon-mode container with `ctr run -d`, `ctr task kill`, …).'));
    say(`${green('Demo done')} in ${since(t0)}; ${dim('cleaning up (the viewer stops too; --keep keeps it up)')}`);
    await cleanup();
    return missing.length ? 1 : 0;
  }

  // --keep: serve until Ctrl-C, printing each new container trace as it completes.
  say('');
  say(bold('Try more, in another terminal (as root):'));
  for (const l of tryMore(ctd, workDir)) say(`  ${l}`);
  say(dim(`  (the demo module also knows: sleep <s>, exit <code>, write <file> <text>, cat <file>, echo <words>)`));
  say('');
  say(`${green('Demo done')} in ${since(t0)}. Serving the viewer at ${page}`);
  say(bold('Press Ctrl-C to stop') + dim(' (stops containerd and removes the temp dir).'));
  const printed = new Map<string, number>([[traceId, spans.length]]);
  const quiet = new Map<string, NodeJS.Timeout>();
  const off = rx.onSpans((batch) => {
    for (const tid of new Set(batch.map((s) => s.traceId))) {
      const prev = quiet.get(tid);
      if (prev) {
        clearTimeout(prev);
        timers.delete(prev);
      }
      const t = setTimeout(() => {
        timers.delete(t);
        quiet.delete(tid);
        const all = rx!.trace(tid);
        // Print once the container's root span is there (the root ends when the task is deleted).
        if (!all.some((s) => s.name === 'wasmts.container') || printed.get(tid) === all.length) return;
        const update = printed.has(tid);
        printed.set(tid, all.length);
        const cid = all.find((s) => s.name === 'wasmts.container')?.attributes['container.id'];
        say('');
        say(bold(`${update ? 'Updated trace' : 'New trace'}${typeof cid === 'string' ? ` of container ${cid}` : ''}:`));
        process.stdout.write(renderWaterfall(all, { width: opts.width, color: opts.color }));
        say(dim(`${page}#trace=${tid}`));
      }, 1000);
      timers.add(t);
      quiet.set(tid, t);
    }
  });
  await new Promise<void>((resolve) => {
    stopKeeping = resolve;
  });
  off();
  await cleanup();
  return 0;
}

main(process.argv.slice(2)).then(
  async (code) => {
    if (interrupted) return; // onSignal exits once cleanup is done
    await cleanup();
    process.exit(code);
  },
  async (err: unknown) => {
    if (interrupted) return;
    say('');
    process.stderr.write(`${red('demo failed:')} ${err instanceof Error ? err.message : String(err)}\n`);
    await cleanup();
    process.exit(1);
  },
);
