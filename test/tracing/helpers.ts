// Shared pieces of the tracing suites, built on the harness: private
// containerds whose environment carries OTEL_* variables (so the shims they
// start do), the tracing image, and helpers to pick one container's trace
// out of what the receiver got and check its shape.
//
//   const img = await prepareImage('trace');
//   const env = await startTracedContainerd('trace', { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl }, img);
//   const r = await env.run(['/probe.wasm', 'trace'], { id: env.id('tc') });
//   const { spans } = await waitForContainerTrace(rx, id, ['wasm.run'], 10_000);
//
// Every containerd gets exactly the OTEL_* / TRACECONTEXT variables given (any
// the test runner itself carries are blanked, which the OTEL spec treats as
// unset), so the test environment cannot leak into the shims.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import {
  e2e,
  escapeRegExp,
  holdsFileUnder,
  moduleFiles,
  packTestImage,
  settledProblems,
  setupSuite,
  shimProcesses,
  sleep,
  TASK_SERVICE as SERVICE,
  type ProcessInfo,
  type RunResult,
  type Suite,
  type TestImage,
} from '../harness/index.js';
import type { ReceivedSpan } from '../../src/otlp/convert.js';
import type { OtlpReceiver } from '../../src/otlp/receiver.js';

export type { ReceivedSpan } from '../../src/otlp/convert.js';

export const DEFAULT_SERVICE_NAME = 'containerd-shim-wasmts';

/** The tracing image: probe.wasm, with hello.wasm and fib.wasm beside it. */
export function prepareImage(name: string): Promise<TestImage> {
  return packTestImage(`tracing-${name}`, { files: () => moduleFiles(['hello.wasm', 'fib.wasm']), env: ['PATH=/'] });
}

/** A private containerd whose environment is otelEnv (ours blanked), bin/ on its PATH, `image` imported. */
export function startTracedContainerd(name: string, otelEnv: Record<string, string>, image: TestImage): Promise<Suite> {
  return setupSuite(`trc-${name}`, { env: otelEnv, image, binDir: true });
}

/**
 * Shim processes of s busy with container id: its `start` or `delete`, or the
 * long-lived daemon while it serves the container's socket or holds a file of
 * its bundle.
 */
export function shimsBusyWith(s: Suite, id: string): ProcessInfo[] {
  const byId = new RegExp(`(^|\\s)-id ${escapeRegExp(id)}(\\s|$)`);
  // containerd renames a bundle to .<id> before removing it
  const bundle = s.c.bundleDir(id);
  const dirs = [bundle, path.join(path.dirname(bundle), `.${id}`)];
  const serving = fs.existsSync(s.socketFor(id));
  return shimProcesses(s.c.address, s.c.pid)
    .filter((p) => /containerd-shim-wasmts|shim\.cjs/.test(p.cmdline))
    .filter((p) => (p.daemon ? serving || holdsFileUnder(p.pid, dirs) : byId.test(p.cmdline)));
}

/** Polls until no shim is busy with id any more; resolves with the ms it took since `since` (or rejects after timeoutMs). */
export async function waitShimGone(s: Suite, id: string, timeoutMs: number, since = Date.now()): Promise<number> {
  for (;;) {
    const left = shimsBusyWith(s, id);
    if (left.length === 0) return Date.now() - since;
    if (Date.now() - since > timeoutMs) {
      throw new Error(
        `shim of ${id} still running ${Date.now() - since} ms after deletion: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`,
      );
    }
    await sleep(25);
  }
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
        `  ${s.name} trace=${s.traceId.slice(0, 8)} span=${s.spanId} parent=${s.parentSpanId || '-'} ${ms(s).toFixed(1)}ms proc=${String(s.resource['wasmts.process'])} pid=${String(s.resource['process.pid'])} status=${s.status.code}`,
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

/** Counts of the shim log's dropped-span warnings naming `endpoint` (the traces URL). */
export function droppedSpanWarnings(log: string, endpoint: string): { lines: string[]; counts: number[] } {
  const re = new RegExp(
    `level=warn msg=".*span export to ${escapeRegExp(endpoint)} \\(http/protobuf\\) failed: .*; (\\d+) spans? dropped"`,
  );
  const lines = log.split('\n').filter((l) => re.test(l));
  return { lines, counts: lines.map((l) => Number(re.exec(l)![1])) };
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
      `${s.name} server.address is the socket (${String(s.attributes['server.address'])})`,
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
    `Create has wasmts.task.pid (${String(create.attributes['wasmts.task.pid'])})`,
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
  r: RunResult;
  id: string;
  spans: ReceivedSpan[];
  /** Date.now() when the wanted spans were all there. */
  at: number;
}

/** `ctr run --rm` of args (exit code must be code), then waits for the named spans of its trace. */
export async function runTraced(
  e: Suite,
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

/** The leak census of every env, polled until clean or timeoutMs (a daemon lets go of a finished container within moments). */
export async function settledLeftovers(envs: Suite[], timeoutMs = 5_000): Promise<string[]> {
  return (await Promise.all(envs.map((e) => settledProblems(e.c, e.ids, timeoutMs)))).flat();
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
  into: Partial<Record<K, Suite>>,
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
  e: () => Suite,
  dump: (env: Suite, ids: string[]) => string,
  body: (t: TestContext) => Promise<void>,
): (t: TestContext) => Promise<void> {
  return e2e(e, [], (t) => body(t), { dump });
}
