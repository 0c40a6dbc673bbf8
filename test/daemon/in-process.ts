// What the in-process Task service tests share: a bundle on disk (config.json
// and a rootfs with a module that only needs to look like Wasm, since the fake
// engine compiles nothing), recording sinks, request builders and error checks.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import * as pb from '../../src/gen/containerd/task/v2/shim_pb.js';
import type { EventSink } from '../../src/daemon/events.js';
import type { Logger } from '../../src/daemon/log.js';
import type { CallContext } from '../../src/ttrpc/types.js';
import { ContextValues } from '../../src/ttrpc/context-values.js';
import type { Code } from '../../src/ttrpc/status.js';
import { ShimError, toTtrpcError, type ErrorKind } from '../../src/daemon/errors.js';
import { TaskService, type TaskServiceDeps } from '../../src/daemon/task-service.js';
import { FakeEngine } from './fake-engine.js';

/** The first 8 bytes of a module: the magic and version Create checks. */
export const WASM_HEADER = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

export interface BundleOptions {
  args?: string[];
  annotations?: Record<string, string>;
  /** Replaces config.json's text (a broken bundle). */
  config?: string;
}

/** A bundle under `dir` as containerd leaves it: config.json and rootfs/app.wasm. */
export function makeBundle(dir: string, name: string, options: BundleOptions = {}): string {
  const bundle = path.join(dir, name);
  fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
  fs.writeFileSync(path.join(bundle, 'rootfs', 'app.wasm'), WASM_HEADER);
  const spec = {
    process: { args: options.args ?? ['/app.wasm'], env: ['PATH=/'], cwd: '/' },
    root: { path: 'rootfs' },
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  fs.writeFileSync(path.join(bundle, 'config.json'), options.config ?? JSON.stringify(spec));
  return bundle;
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-task-'));
}

export interface Published {
  topic: string;
  event: Record<string, unknown>;
}

export class RecordingEvents implements EventSink {
  readonly published: Published[] = [];
  publish<D extends DescMessage>(topic: string, _schema: D, event: MessageShape<D>): void {
    this.published.push({ topic, event });
  }
  async drain(): Promise<void> {}
  topics(): string[] {
    return this.published.map((p) => p.topic);
  }
}

export interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

export function recordingLog(lines: LogLine[]): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push({ level, msg, fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface Harness {
  service: TaskService;
  calls: Calls;
  engine: FakeEngine;
  events: RecordingEvents;
  log: LogLine[];
  /** The `now` of each Shutdown that let the socket go. */
  shutdowns: boolean[];
  dir: string;
}

export function harness(deps: Partial<TaskServiceDeps> = {}): Harness {
  const engine = new FakeEngine();
  const events = new RecordingEvents();
  const log: LogLine[] = [];
  const shutdowns: boolean[] = [];
  const service = new TaskService({
    engine,
    events,
    log: recordingLog(log),
    shutdown: (now) => void shutdowns.push(now),
    ...deps,
  });
  return { service, calls: new Calls(service), engine, events, log, shutdowns, dir: tempDir() };
}

const PROCESS_SPEC_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';

export interface CreateOptions {
  stdout?: string;
  stderr?: string;
  terminal?: boolean;
  checkpoint?: string;
}

/** The Task RPCs as containerd would send them, one line per call in the tests. */
export class Calls {
  constructor(private readonly service: TaskService) {}
  create(id: string, bundle: string, init: CreateOptions = {}, ctx?: CallContext) {
    return this.service.create(create(pb.CreateTaskRequestSchema, { id, bundle, ...init }), ctx);
  }
  start(id: string, execId = '') {
    return this.service.start(create(pb.StartRequestSchema, { id, execId }));
  }
  state(id: string, execId = '') {
    return this.service.state(create(pb.StateRequestSchema, { id, execId }));
  }
  wait(id: string, execId = '') {
    return this.service.wait(create(pb.WaitRequestSchema, { id, execId }));
  }
  delete(id: string, execId = '', ctx?: CallContext) {
    return this.service.delete(create(pb.DeleteRequestSchema, { id, execId }), ctx);
  }
  kill(id: string, signal: number, options: { execId?: string; all?: boolean } = {}) {
    return this.service.kill(create(pb.KillRequestSchema, { id, signal, ...options }));
  }
  pause(id: string) {
    return this.service.pause(create(pb.PauseRequestSchema, { id }));
  }
  resume(id: string) {
    return this.service.resume(create(pb.ResumeRequestSchema, { id }));
  }
  exec(id: string, execId: string, args = ['/app.wasm', 'exec'], typeUrl = PROCESS_SPEC_URL) {
    const value = new TextEncoder().encode(JSON.stringify({ args, env: ['PATH=/'], cwd: '/' }));
    return this.service.exec(create(pb.ExecProcessRequestSchema, { id, execId, spec: { typeUrl, value } }));
  }
  pids(id: string) {
    return this.service.pids(create(pb.PidsRequestSchema, { id }));
  }
  closeIO(id: string, execId = '') {
    return this.service.closeIO(create(pb.CloseIORequestSchema, { id, execId, stdin: true }));
  }
  resizePty(id: string, execId = '') {
    return this.service.resizePty(create(pb.ResizePtyRequestSchema, { id, execId, width: 80, height: 24 }));
  }
  update(id: string, annotations: Record<string, string>, resources?: string, typeUrl = LINUX_RESOURCES_URL) {
    const any = resources === undefined ? undefined : { typeUrl, value: new TextEncoder().encode(resources) };
    return this.service.update(
      create(pb.UpdateTaskRequestSchema, { id, annotations, ...(any ? { resources: any } : {}) }),
    );
  }
  stats(id: string) {
    return this.service.stats(create(pb.StatsRequestSchema, { id }));
  }
  checkpoint(id: string) {
    return this.service.checkpoint(create(pb.CheckpointTaskRequestSchema, { id, path: '/cp' }));
  }
  connect(id: string) {
    return this.service.connect(create(pb.ConnectRequestSchema, { id }));
  }
  shutdown(now: boolean) {
    return this.service.shutdown(create(pb.ShutdownRequestSchema, { now }));
  }
}

/** As containerd's typeurl names the OCI LinuxResources it sends with Update. */
export const LINUX_RESOURCES_URL = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';

/** The context of a call over containerd's v2 Task service (Delete then leaves the cleanup to Shutdown). */
export function v2Call(method: string): CallContext {
  return {
    service: 'containerd.task.v2.Task',
    method,
    metadata: new Map(),
    signal: new AbortController().signal,
    values: new ContextValues(),
  };
}

/** Lets exit listeners (promise callbacks) run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The call fails with a ShimError of this kind, which reaches containerd as this ttrpc code. */
export async function rejectsWith(
  call: Promise<unknown>,
  kind: ErrorKind,
  code: Code,
  message?: RegExp | string,
): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ShimError, `a ShimError, not ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(toTtrpcError(err).code, code, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  });
}
