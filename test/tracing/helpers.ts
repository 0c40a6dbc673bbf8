// Shared setup for the tracing suites: private containerds whose environment
// carries OTEL_* variables (so the shims they start do), the test image, an
// OTLP receiver, misbehaving endpoints, and helpers to pick one container's
// trace out of what the receiver got.
//
//   const img = await prepareImage('trace');
//   const env = await startTracedContainerd('trace', { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl }, img);
//   const r = await env.run(['/probe.wasm', 'trace'], { id: env.id('tc') });
//   const { spans } = await waitForContainerTrace(rx, id, ['wasm.run'], 10_000);
//
// Every containerd gets exactly the OTEL_* / TRACECONTEXT variables given (any
// the test runner itself carries are blanked, which the OTEL spec treats as
// unset), so the test environment cannot leak into the shims.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { fromBinary } from '@bufbuild/protobuf';
import {
  busyDaemonProblems,
  daemonKey,
  listProcesses,
  shimDaemons,
  startContainerd,
  type Containerd,
  type CtrOptions,
  type CtrResult,
  type ProcessInfo,
} from '../helpers/containerd.js';
import { daemonPaths, isShimDaemon } from '../../src/handoff/handoff.js';
import { socketPathFor } from '../../src/handoff/socket-address.js';
import { packImage } from '../../src/image/oci.js';
import { ExportTraceServiceRequestSchema } from '../../src/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';
import { requestToSpans, type ReceivedSpan } from '../../src/otlp/convert.js';
import type { OtlpReceiver } from '../../src/otlp/receiver.js';
import { withLock } from '../e2e/helpers.js';

export type { ReceivedSpan } from '../../src/otlp/convert.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Holds containerd-shim-wasmts-v1, so `io.containerd.wasmts.v1` resolves on containerd's PATH. */
export const BIN_DIR = path.join(REPO, 'bin');
export const RUNTIME = 'io.containerd.wasmts.v1';
export const PLATFORM = 'wasip1/wasm';
export const MODULES = path.join(REPO, 'build', 'modules');
export const SERVICE = 'containerd.task.v2.Task';
export const DEFAULT_SERVICE_NAME = 'containerd-shim-wasmts';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------
// building

/** Builds the C test modules; requires the shim bundle (`make build`) to exist. */
export async function ensureBuilt(): Promise<void> {
  for (const f of ['shim.cjs', 'daemon.cjs', 'wasm-child.cjs', 'telemetry-worker.cjs']) {
    if (!fs.existsSync(path.join(REPO, 'dist', f))) throw new Error(`dist/${f} is missing: run \`make build\` first`);
  }
  await withLock('e2e-build', () => {
    execFileSync('bash', [path.join(REPO, 'scripts', 'build-modules.sh')], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  });
}

export interface TestImage {
  ref: string;
  tar: string;
  /** Temp dir holding the tar; removed by dispose(). */
  dir: string;
  /** sha256 and size of /probe.wasm, the image's module. */
  probe: { size: number; sha256: string };
  dispose(): void;
}

/** An image whose module is probe.wasm, with hello.wasm and fib.wasm beside it. */
export async function prepareImage(name: string): Promise<TestImage> {
  await ensureBuilt();
  const dir = fs.mkdtempSync(path.join(tmpdir(), `wasmts-tracing-img-${name}-`));
  const ref = `docker.io/wasmts-tracing/${name}:v1`;
  const tar = path.join(dir, 'image.tar');
  const probePath = path.join(MODULES, 'probe.wasm');
  await packImage({
    module: probePath,
    files: [
      { src: path.join(MODULES, 'hello.wasm'), dest: 'hello.wasm' },
      { src: path.join(MODULES, 'fib.wasm'), dest: 'fib.wasm' },
    ],
    ref,
    env: ['PATH=/'],
    output: tar,
  });
  const bytes = fs.readFileSync(probePath);
  return {
    ref,
    tar,
    dir,
    probe: { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') },
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------
// containerd with an OTEL environment

/** The environment carriers of trace context the shim reads. */
export const CARRIERS = ['TRACECONTEXT', 'TRACEPARENT', 'TRACESTATE', 'BAGGAGE'];

/** `env` plus every OTEL_* / carrier variable of this process blanked (empty = unset for OTEL). */
export function isolatedOtelEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_') || CARRIERS.includes(k)) out[k] = '';
  return { ...out, ...env };
}

export interface RunOpts extends CtrOptions {
  id: string;
  /** Default true (`--rm`). Ignored with detach. */
  rm?: boolean;
  /** `ctr run -d`. */
  detach?: boolean;
}

export interface TimedResult extends CtrResult {
  /** Wall time of the ctr command, ms. */
  ms: number;
  /** Date.now() when ctr returned. */
  endedAt: number;
}

export interface TracedContainerd {
  readonly name: string;
  readonly c: Containerd;
  readonly env: Record<string, string>;
  /** A unique container id (unique across concurrently running test files too). */
  id(label: string): string;
  readonly ids: string[];
  /** `ctr run [--rm|-d] --runtime io.containerd.wasmts.v1 --platform wasip1/wasm <image> <id> ...args`, timed. */
  run(args: string[], o: RunOpts): Promise<TimedResult>;
  /**
   * Shim processes of this containerd: with id, the ones still busy with that container
   * (its `start` or `delete`, or the long-lived daemon while it serves the container's
   * socket or holds a file of its bundle); without, every `start` or `delete` still running.
   */
  shims(id?: string): ProcessInfo[];
  /** The long-lived daemons of this containerd (one per key). */
  daemons(): ProcessInfo[];
  /** Polls until no shim is busy with id any more; resolves with the ms it took (or rejects after timeoutMs). */
  waitShimGone(id: string, timeoutMs: number, since?: number): Promise<number>;
  /** Kill + delete a task and its container, ignoring errors. */
  cleanup(id: string): Promise<void>;
  /** Problems: `start`/`delete` still running, a daemon holding what finished containers left, Wasm children holding a FIFO of one of our containers. */
  leftovers(): string[];
  /** containerd log lines (the shims log a container's lines there) mentioning id. */
  logFor(id: string): string;
  /** What the daemons logged outside any container (their daemon.log: start-up, telemetry), so far. */
  daemonLog(): string;
  stop(): Promise<void>;
}

/** True when process pid has a file open at or below one of dirs (a bundle's log FIFO, its rootfs). */
function holdsFileUnder(pid: number, dirs: string[]): boolean {
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/ \(deleted\)$/, '');
      if (dirs.some((d) => target === d || target.startsWith(`${d}/`))) return true;
    } catch {
      /* closed meanwhile */
    }
  }
  return false;
}

let idCounter = 0;
const runTag = randomBytes(3).toString('hex');

export async function startTracedContainerd(
  name: string,
  otelEnv: Record<string, string>,
  image: TestImage,
): Promise<TracedContainerd> {
  const env = isolatedOtelEnv(otelEnv);
  const c = await startContainerd({ name: `trc-${name}`, shimDir: BIN_DIR, env });
  try {
    await c.importImage(image.tar, { timeoutMs: 30_000 });
  } catch (err) {
    await c.stop();
    throw err;
  }
  const ids: string[] = [];
  /** The daemon.log files of the daemons seen so far. */
  const daemonLogs = new Set<string>();
  const addrRe = new RegExp(`(^|\\s)-address ${escapeRe(c.address)}(\\s|$)`);
  const shimProcs = (): ProcessInfo[] =>
    listProcesses(addrRe).filter((p) => p.pid !== c.pid && /containerd-shim-wasmts|shim\.cjs/.test(p.cmdline));
  const bundleDir = (id: string): string => path.join(c.state, 'io.containerd.runtime.v2.task', c.namespace, id);
  const shims = (id?: string): ProcessInfo[] => {
    const procs = shimProcs();
    if (id === undefined) return procs.filter((p) => !isShimDaemon(p.argv));
    const byId = new RegExp(`(^|\\s)-id ${escapeRe(id)}(\\s|$)`);
    // containerd renames a bundle to .<id> before removing it
    const dirs = [bundleDir(id), path.join(path.dirname(bundleDir(id)), `.${id}`)];
    const serving = fs.existsSync(socketPathFor(c.address, c.namespace, id));
    return procs.filter((p) => (isShimDaemon(p.argv) ? serving || holdsFileUnder(p.pid, dirs) : byId.test(p.cmdline)));
  };

  const cleanup = async (id: string): Promise<void> => {
    const q = { timeoutMs: 10_000 };
    await c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id], q).catch(() => undefined);
    await c.ctr(['task', 'delete', '-f', id], q).catch(() => undefined);
    await c.ctr(['container', 'delete', id], q).catch(() => undefined);
  };

  return {
    name,
    c,
    env: otelEnv,
    ids,
    id(label) {
      const id = `trc-${name}-${label}-${runTag}-${++idCounter}`;
      ids.push(id);
      return id;
    },
    async run(args, o) {
      const mode = o.detach ? ['-d'] : o.rm === false ? [] : ['--rm'];
      const t0 = performance.now();
      const r = await c.ctr(
        ['run', ...mode, '--runtime', RUNTIME, '--platform', PLATFORM, image.ref, o.id, ...args],
        o,
      );
      return { ...r, ms: performance.now() - t0, endedAt: Date.now() };
    },
    shims,
    daemons: () => shimDaemons(c.address),
    async waitShimGone(id, timeoutMs, since = Date.now()) {
      for (;;) {
        const left = shims(id);
        if (left.length === 0) return Date.now() - since;
        if (Date.now() - since > timeoutMs) {
          throw new Error(
            `shim of ${id} still running ${Date.now() - since} ms after deletion: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`,
          );
        }
        await sleep(25);
      }
    },
    cleanup,
    leftovers() {
      const problems: string[] = [];
      for (const p of shims()) problems.push(`shim still running: ${p.pid} ${p.cmdline}`);
      // The long-lived daemon stays (one per key), holding nothing of finished containers.
      problems.push(...busyDaemonProblems(c.address, c.tmp));
      for (const p of listProcesses(/wasm-child/)) {
        let fds: string[] = [];
        try {
          fds = fs.readdirSync(`/proc/${p.pid}/fd`);
        } catch {
          continue;
        }
        const ours = fds.some((fd) => {
          try {
            const link = fs.readlinkSync(`/proc/${p.pid}/fd/${fd}`);
            return link.startsWith(c.tmp + '/') || ids.some((id) => link.includes(`/${id}-`));
          } catch {
            return false;
          }
        });
        if (ours) problems.push(`wasm child still running: ${p.pid} ${p.cmdline}`);
      }
      return problems;
    },
    daemonLog() {
      for (const d of shimDaemons(c.address)) {
        const key = daemonKey(d.pid);
        if (key) daemonLogs.add(daemonPaths(key).log);
      }
      return [...daemonLogs]
        .map((f) => {
          try {
            return fs.readFileSync(f, 'utf8');
          } catch {
            return ''; // its daemon left and removed it
          }
        })
        .join('');
    },
    logFor(id) {
      return c
        .log()
        .split('\n')
        .filter((l) => l.includes(id))
        .slice(-60)
        .join('\n');
    },
    async stop() {
      await c.stop();
    },
  };
}

// ---------------------------------------------------------------------------
// spans

export const ms = (s: ReceivedSpan): number => Number(s.endTimeUnixNano - s.startTimeUnixNano) / 1e6;
export const startMs = (s: ReceivedSpan): number => Number(s.startTimeUnixNano / 1000n) / 1000;
export const endMs = (s: ReceivedSpan): number => Number(s.endTimeUnixNano / 1000n) / 1000;

/** The root span `wasmts.container` of container id, if it arrived. */
export function rootOf(spans: ReceivedSpan[], id: string): ReceivedSpan | undefined {
  return spans.find((s) => s.name === 'wasmts.container' && s.attributes['container.id'] === id);
}

/** Every span of container id's trace (by the root's trace id, else by container.id). */
export function containerTrace(spans: ReceivedSpan[], id: string): ReceivedSpan[] {
  const root = rootOf(spans, id);
  const traceIds = new Set(
    root ? [root.traceId] : spans.filter((s) => s.attributes['container.id'] === id).map((s) => s.traceId),
  );
  return spans.filter((s) => traceIds.has(s.traceId));
}

/** The (first) RPC span `containerd.task.v2.Task/<method>`. */
export function rpc(spans: ReceivedSpan[], method: string): ReceivedSpan | undefined {
  return spans.find((s) => s.name === `${SERVICE}/${method}`);
}
/** Every RPC span `containerd.task.v2.Task/<method>`. */
export function rpcs(spans: ReceivedSpan[], method: string): ReceivedSpan[] {
  return spans.filter((s) => s.name === `${SERVICE}/${method}`);
}

/** Short names (Create → containerd.task.v2.Task/Create; names with a dot are taken as is). */
function fullName(n: string): string {
  return n.includes('.') ? n : `${SERVICE}/${n}`;
}

export function describeSpans(spans: ReceivedSpan[]): string {
  return spans
    .map(
      (s) =>
        `  ${s.name} trace=${s.traceId.slice(0, 8)} span=${s.spanId} parent=${s.parentSpanId || '-'} ${ms(s).toFixed(1)}ms proc=${s.resource['wasmts.process']} pid=${s.resource['process.pid']} status=${s.status.code}`,
    )
    .join('\n');
}

/**
 * Waits until the trace of container id holds a span of every name in `names`
 * (short RPC names allowed) and returns that trace's spans, plus when the
 * condition became true (Date.now()).
 */
export async function waitForContainerTrace(
  rx: OtlpReceiver,
  id: string,
  names: string[],
  timeoutMs: number,
): Promise<{ spans: ReceivedSpan[]; at: number }> {
  const want = names.map(fullName);
  const done = (all: ReceivedSpan[]): boolean => {
    const t = containerTrace(all, id);
    return want.every((n) => t.some((s) => s.name === n));
  };
  try {
    await rx.waitFor(done, timeoutMs);
  } catch {
    const got = containerTrace(rx.spans(), id);
    throw new Error(
      `spans of ${id} did not all arrive within ${timeoutMs} ms; wanted ${want.join(', ')}; got:\n${describeSpans(got) || '  (nothing)'}\nreceiver total: ${rx.spans().length} spans, requests ${JSON.stringify(rx.requests)}`,
    );
  }
  return { spans: containerTrace(rx.spans(), id), at: Date.now() };
}

/** The span names every ctr run --rm of a successful container produces. */
export const LIFECYCLE = [
  'wasmts.container',
  'Create',
  'Start',
  'Wait',
  'Delete',
  'wasm.compile',
  'wasm.instantiate',
  'wasm.run',
];

// ---------------------------------------------------------------------------
// misbehaving endpoints

export interface BadEndpoints {
  /** Nothing listens there (connection refused). */
  deadUrl: string;
  /** Accepts, writes junk bytes (not HTTP, not HTTP/2) and closes. */
  garbageUrl: string;
  /** Accepts, reads the request, never answers (keeps the connection open). */
  hangUrl: string;
  /** Export requests the never-answering endpoint read in full (OTLP/HTTP protobuf), decoded: the spans the shim tried to send. */
  hungSpans(): ReceivedSpan[];
  /** Connections each endpoint accepted. */
  readonly connections: { garbage: number; hang: number };
  close(): Promise<void>;
}

function listenLocal(srv: net.Server | http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port));
  });
}

export async function startBadEndpoints(): Promise<BadEndpoints> {
  const sockets = new Set<net.Socket>();
  const connections = { garbage: 0, hang: 0 };
  const hung: ReceivedSpan[] = [];
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  };
  const garbage = net.createServer((s) => {
    connections.garbage++;
    track(s);
    s.on('data', () => undefined);
    s.end(Buffer.from('\x00\xffgarbage \x01\x02 not http at all\r\n\r\n\xde\xad\xbe\xef', 'latin1'));
  });
  // An HTTP server that reads each request and never writes a byte back.
  const hang = http.createServer((req) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
        hung.push(...requestToSpans(fromBinary(ExportTraceServiceRequestSchema, body), 'http'));
      } catch {
        /* not an OTLP protobuf request: still never answered */
      }
    });
  });
  hang.on('connection', (s) => {
    connections.hang++;
    track(s);
  });
  hang.requestTimeout = 0;
  hang.headersTimeout = 0;
  hang.keepAliveTimeout = 0;
  const dead = net.createServer();
  const [garbagePort, hangPort, deadPort] = await Promise.all([
    listenLocal(garbage),
    listenLocal(hang),
    listenLocal(dead),
  ]);
  await new Promise<void>((r) => dead.close(() => r()));
  return {
    deadUrl: `http://127.0.0.1:${deadPort}`,
    garbageUrl: `http://127.0.0.1:${garbagePort}`,
    hangUrl: `http://127.0.0.1:${hangPort}`,
    hungSpans: () => [...hung],
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => garbage.close(() => r())),
        new Promise<void>((r) => hang.close(() => r())),
      ]);
    },
  };
}

export interface UntrustedTlsEndpoint {
  /** https://127.0.0.1:<port>, served with a self-signed certificate no CA the shim knows has signed. */
  url: string;
  /** TCP connections accepted (TLS handshakes the exporter then refuses). */
  readonly connections: number;
  close(): Promise<void>;
}

/** An OTLP/HTTPS endpoint whose certificate the exporter must refuse (the wrong-CA case). */
export async function startUntrustedTlsEndpoint(): Promise<UntrustedTlsEndpoint> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'wasmts-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const srv = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  srv.on('connection', (s: net.Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  srv.on('tlsClientError', () => undefined);
  const port = await listenLocal(srv);
  return {
    url: `https://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Counts of the shim log's dropped-span warnings naming `endpoint` (the traces URL). */
export function droppedSpanWarnings(log: string, endpoint: string): { lines: string[]; counts: number[] } {
  const re = new RegExp(
    `level=warn msg=".*span export to ${escapeRe(endpoint)} \\(http/protobuf\\) failed: .*; (\\d+) spans? dropped"`,
  );
  const lines = log.split('\n').filter((l) => re.test(l));
  return { lines, counts: lines.map((l) => Number(re.exec(l)![1])) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---------------------------------------------------------------------------
// the shape of one container's trace

export interface LifecycleExpectations {
  serviceName: string;
  /** The container's exit status (Wait, Delete, the root and wasm.run carry it as process.exit.code). */
  exitStatus: number;
  /** error.type on the root and wasm.run when exitStatus is not 0 (default: the status as a string). */
  errorType?: string;
  /** Size and sha256 of the module the container ran (wasm.compile carries them). */
  module?: { size: number; sha256: string };
  /** 'http' or 'grpc': how every span of the trace reached the receiver. */
  protocol?: 'http' | 'grpc';
  /** The root's parent span id (from the shim's environment); default none. */
  parent?: string;
}

export interface LifecycleTrace {
  root: ReceivedSpan;
  create: ReceivedSpan;
  start: ReceivedSpan;
  wait: ReceivedSpan;
  del: ReceivedSpan;
  childSpans: ReceivedSpan[];
  shimPid: number;
  childPid: number;
}

/**
 * Asserts the shape of a `ctr run --rm` container's trace: one root
 * `wasmts.container`, every Task RPC a server span under it with the rpc.*
 * attributes, the Wasm child's spans under Create, resources and pids of the
 * two processes, exit statuses. Returns the main spans for further checks.
 */
export function checkLifecycleTrace(all: ReceivedSpan[], id: string, x: LifecycleExpectations): LifecycleTrace {
  const ctx = (): string => `\n${describeSpans(containerTrace(all, id))}`;
  const eq = (a: unknown, b: unknown, what: string): void => {
    if (a !== b) throw new Error(`${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}${ctx()}`);
  };
  const ok = (cond: unknown, what: string): void => {
    if (!cond) throw new Error(`${what}${ctx()}`);
  };
  const spans = containerTrace(all, id);
  const roots = spans.filter((s) => s.name === 'wasmts.container');
  eq(roots.length, 1, `wasmts.container spans in the trace of ${id}`);
  const root = roots[0];
  eq(
    root.parentSpanId,
    x.parent ?? '',
    "root span parent (containerd 1.6 sends no traceparent; the shim's environment may carry one)",
  );
  eq(root.attributes['container.id'], id, 'root container.id');
  // One trace per container: every span naming this container is in this trace.
  const elsewhere = all.filter((s) => s.attributes['container.id'] === id && s.traceId !== root.traceId);
  ok(
    elsewhere.length === 0,
    `spans of ${id} in another trace: ${elsewhere.map((s) => `${s.name}@${s.traceId}`).join(', ')}`,
  );
  for (const s of spans) {
    if (s.attributes['container.id'] !== undefined) eq(s.attributes['container.id'], id, `${s.name} container.id`);
    eq(s.resource['service.name'], x.serviceName, `${s.name} resource service.name`);
    if (x.protocol) eq(s.protocol, x.protocol, `${s.name} arrived over`);
  }

  // RPC spans: server spans, children of the root, rpc.* attributes.
  const rpcSpans = spans.filter((s) => s.name.startsWith(`${SERVICE}/`));
  for (const s of rpcSpans) {
    const method = s.name.slice(SERVICE.length + 1);
    eq(s.parentSpanId, root.spanId, `${s.name} parent (the container's root)`);
    eq(s.kind, 2, `${s.name} kind (SERVER)`);
    // Semantic conventions 1.45: rpc.system.name, the fully qualified rpc.method, rpc.status_code.
    eq(s.attributes['rpc.system.name'], 'ttrpc', `${s.name} rpc.system.name`);
    eq(s.attributes['rpc.method'], `${SERVICE}/${method}`, `${s.name} rpc.method`);
    ok(typeof s.attributes['rpc.status_code'] === 'string', `${s.name} has rpc.status_code`);
    ok(
      String(s.attributes['server.address']).startsWith('/'),
      `${s.name} server.address is the socket (${s.attributes['server.address']})`,
    );
    eq(s.attributes['network.transport'], 'unix', `${s.name} network.transport`);
    eq(s.attributes['container.id'], id, `${s.name} container.id`);
    for (const old of [
      'rpc.system',
      'rpc.service',
      'rpc.grpc.status_code',
      'wasmts.error.code',
      'wasmts.exit_status',
      'process.pid',
    ]) {
      eq(s.attributes[old], undefined, `${s.name} ${old} (not in the pinned conventions, or the resource's)`);
    }
  }
  const one = (method: string): ReceivedSpan => {
    const list = rpcs(spans, method);
    eq(list.length, 1, `number of ${method} spans`);
    return list[0];
  };
  const create = one('Create');
  const start = one('Start');
  const wait = one('Wait');
  const del = one('Delete');
  for (const s of [create, start, wait, del]) {
    eq(s.status.code, 0, `${s.name} status`);
    ok(
      s.startTimeUnixNano >= root.startTimeUnixNano && s.endTimeUnixNano <= root.endTimeUnixNano,
      `${s.name} lies within the root span`,
    );
  }
  ok(create.endTimeUnixNano <= start.startTimeUnixNano, 'Create ends before Start starts');
  ok(start.endTimeUnixNano <= del.startTimeUnixNano, 'Start ends before Delete starts');

  // pids: the child's pid is what Create returned (wasmts.task.pid); the shim's is the resource's process.pid.
  const childPid = Number(create.attributes['wasmts.task.pid']);
  ok(
    Number.isInteger(childPid) && childPid > 0,
    `Create has wasmts.task.pid (${create.attributes['wasmts.task.pid']})`,
  );
  eq(Number(root.attributes['wasmts.task.pid']), childPid, 'root wasmts.task.pid');
  const shimPid = Number(root.resource['process.pid']);
  ok(Number.isInteger(shimPid) && shimPid > 0, "the root's resource has process.pid");
  ok(shimPid !== childPid, 'shim and child are distinct processes');
  for (const s of spans)
    eq(
      s.attributes['process.pid'],
      undefined,
      `${s.name} has no process.pid attribute (it would clash with the resource's)`,
    );
  for (const s of spans.filter((s) => s.resource['wasmts.process'] !== 'child')) {
    eq(s.resource['wasmts.process'], 'shim', `${s.name} resource wasmts.process`);
    eq(Number(s.resource['process.pid']), shimPid, `${s.name} resource process.pid (the shim)`);
    // The daemon's resource: the SDK's detectors.
    ok(
      typeof s.resource['service.instance.id'] === 'string' && s.resource['service.instance.id'] !== '',
      `${s.name} resource service.instance.id`,
    );
    ok(typeof s.resource['host.name'] === 'string' && s.resource['host.name'] !== '', `${s.name} resource host.name`);
    ok(typeof s.resource['host.arch'] === 'string', `${s.name} resource host.arch`);
    eq(s.resource['process.runtime.name'], 'nodejs', `${s.name} resource process.runtime.name`);
  }
  eq(
    new Set(spans.filter((s) => s.resource['wasmts.process'] === 'shim').map((s) => s.resource['service.instance.id']))
      .size,
    1,
    'one service.instance.id for the daemon',
  );

  // exit status once exited, and the workload's failure as an error
  eq(Number(wait.attributes['process.exit.code']), x.exitStatus, 'Wait process.exit.code');
  eq(Number(del.attributes['process.exit.code']), x.exitStatus, 'Delete process.exit.code');
  eq(Number(root.attributes['process.exit.code']), x.exitStatus, 'root process.exit.code');
  for (const s of spans.filter(
    (s) => s.name.endsWith('/State') || s.name.endsWith('/Start') || s.name.endsWith('/Create'),
  )) {
    if (s.endTimeUnixNano < wait.endTimeUnixNano - 5_000_000n)
      eq(s.attributes['process.exit.code'], undefined, `${s.name} (before the exit) process.exit.code`);
  }
  const wantError = x.exitStatus === 0 ? undefined : (x.errorType ?? String(x.exitStatus));
  eq(root.status.code, x.exitStatus === 0 ? 0 : 2, 'root status (ERROR when the module failed)');
  eq(root.attributes['error.type'], wantError, 'root error.type');

  // the child's spans: parented on Create (the span TRACECONTEXT names), exported for the child process
  const childSpans = spans.filter((s) => s.name.startsWith('wasm.'));
  for (const n of ['wasm.compile', 'wasm.instantiate', 'wasm.run'])
    eq(childSpans.filter((s) => s.name === n).length, 1, `number of ${n} spans`);
  for (const s of childSpans) {
    eq(s.parentSpanId, create.spanId, `${s.name} parent (the Create span)`);
    eq(s.resource['wasmts.process'], 'child', `${s.name} resource wasmts.process`);
    eq(Number(s.resource['process.pid']), childPid, `${s.name} resource process.pid (the child)`);
    eq(s.attributes['container.id'], id, `${s.name} container.id`);
  }
  const compile = childSpans.find((s) => s.name === 'wasm.compile')!;
  const run = childSpans.find((s) => s.name === 'wasm.run')!;
  if (x.module) {
    eq(Number(compile.attributes['wasm.module.size']), x.module.size, 'wasm.compile wasm.module.size');
    eq(compile.attributes['wasm.module.sha256'], x.module.sha256, 'wasm.compile wasm.module.sha256');
  }
  eq(Number(run.attributes['process.exit.code']), x.exitStatus, 'wasm.run process.exit.code');
  eq(run.status.code, x.exitStatus === 0 ? 0 : 2, 'wasm.run status');
  eq(run.attributes['error.type'], wantError, 'wasm.run error.type');
  for (const s of childSpans) {
    eq(Number(s.resource['process.parent_pid']), shimPid, `${s.name} resource process.parent_pid (the daemon)`);
    eq(
      s.resource['service.instance.id'],
      root.resource['service.instance.id'],
      `${s.name} resource service.instance.id`,
    );
  }
  // Clocks of two processes on one machine: allow a few ms.
  const slackNs = 5_000_000n;
  ok(compile.startTimeUnixNano + slackNs >= create.startTimeUnixNano, 'wasm.compile starts within Create');
  ok(run.startTimeUnixNano + slackNs >= start.startTimeUnixNano, 'wasm.run starts after Start arrived');
  ok(wait.endTimeUnixNano + slackNs >= run.endTimeUnixNano, 'Wait ends after wasm.run');
  return { root, create, start, wait, del, childSpans, shimPid, childPid };
}

/** The W3C traceparent the child got (TRACECONTEXT) when it is the Create span's. */
export function expectedTraceparent(t: { root: ReceivedSpan; create: ReceivedSpan }): string {
  return `00-${t.root.traceId}-${t.create.spanId}-01`;
}

// ---------------------------------------------------------------------------
// running a container and collecting its trace

/**
 * A container that outlives the exporter's warm-up (~250 ms after the shim serves),
 * so the exporter has loaded before the exit flush even on a busy machine.
 */
export const LIVES_PAST_WARMUP = ['/probe.wasm', 'sleep', '0.8'];

export interface TracedRun {
  r: TimedResult;
  id: string;
  spans: ReceivedSpan[];
  /** Date.now() when the wanted spans were all there. */
  at: number;
}

/** `ctr run --rm` of args (exit code must be code), then waits for the named spans of its trace. */
export async function runTraced(
  e: TracedContainerd,
  rx: OtlpReceiver,
  label: string,
  args: string[],
  o: { code: number; names: string[]; timeoutMs?: number },
): Promise<TracedRun> {
  const id = e.id(label);
  const r = await e.run(args, { id });
  if (r.code !== o.code) throw new Error(`ctr run ${args.join(' ')} exited ${r.code} (want ${o.code}): ${r.stderr}`);
  // The exit flush is over ~2 s after deletion, whatever the endpoint does.
  const got = await waitForContainerTrace(rx, id, o.names, o.timeoutMs ?? 6_000);
  return { r, id, ...got };
}

/** leftovers() of every env, polled until empty or timeoutMs (a daemon lets go of a finished container within moments). */
export async function settledLeftovers(envs: TracedContainerd[], timeoutMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let problems = envs.flatMap((e) => e.leftovers());
  while (problems.length && Date.now() < deadline) {
    await sleep(100);
    problems = envs.flatMap((e) => e.leftovers());
  }
  return problems;
}

/**
 * Starts one traced containerd per named environment, all at once, into
 * `into` (each suite's `before`); rejects when any failed to start, leaving
 * the started ones in `into` for the suite's `after` to stop.
 */
export async function startTracedContainerds<K extends string>(
  prefix: string,
  envs: [K, Record<string, string>][],
  image: TestImage,
  into: Partial<Record<K, TracedContainerd>>,
): Promise<void> {
  const started = await Promise.allSettled(
    envs.map(([name, env]) => startTracedContainerd(`${prefix}-${name}`, env, image)),
  );
  started.forEach((s, i) => {
    if (s.status === 'fulfilled') into[envs[i][0]] = s.value;
  });
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * A test body against one containerd: the containers it made are cleaned up
 * after it, and when it fails, `dump(env, ids)` is printed first.
 */
export function withContainers(
  e: () => TracedContainerd,
  dump: (env: TracedContainerd, ids: string[]) => string,
  body: (t: import('node:test').TestContext) => Promise<void>,
): (t: import('node:test').TestContext) => Promise<void> {
  return async (t) => {
    const env = e();
    const first = env.ids.length;
    t.after(async () => {
      await Promise.all(env.ids.slice(first).map((id) => env.cleanup(id)));
    });
    try {
      await body(t);
    } catch (err) {
      process.stderr.write(dump(env, env.ids.slice(first)));
      throw err;
    }
  };
}
