import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import { EmptySchema } from '@bufbuild/protobuf/wkt';
import {
  CreateTaskRequestSchema,
  CreateTaskResponseSchema,
  StateResponseSchema,
  Task,
  type CreateTaskRequest,
  type StateRequest,
} from '../../src/gen/containerd/task/v2/shim_pb.js';
import { encodeFrame, FrameType, MAX_PAYLOAD } from '../../src/ttrpc/frame.js';
import { Code, createClient, TtrpcClient, TtrpcError, TtrpcServer, type CallContext } from '../../src/ttrpc/index.js';
import { ECHO, rawHeader, RawConn, requestFrame, startServer, tempSocketPath, waitFor } from './helpers.js';

const enc = (s: string): Uint8Array => Buffer.from(s);
const dec = (b: Uint8Array): string => Buffer.from(b).toString();

/** A promise plus its resolver, for handlers the test releases by hand. */
function gate<T = void>(): { promise: Promise<T>; open(v: T): void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => (open = r));
  return { promise, open };
}

async function rejectsWith(p: Promise<unknown>, code: Code, msg?: RegExp): Promise<TtrpcError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TtrpcError, `not a TtrpcError: ${String(err)}`);
  assert.equal(err.code, code, `code ${err.code} (${err.message})`);
  if (msg) assert.match(err.message, msg);
  return err;
}

describe('TtrpcServer: raw handlers', () => {
  let env: Awaited<ReturnType<typeof startServer>>;
  const slow = gate();
  let seenCtx: CallContext | undefined;
  let deadlineSignal: AbortSignal | undefined;
  const lateRelease = gate();

  before(async () => {
    env = await startServer((s) => {
      s.register('test.Svc', 'Slow', async () => {
        await slow.promise;
        return enc('slow');
      });
      s.register('test.Svc', 'Ctx', (_p, ctx) => {
        seenCtx = ctx;
        return Promise.resolve(enc('ok'));
      });
      s.register('test.Svc', 'Hang', async (_p, ctx) => {
        deadlineSignal = ctx.signal;
        await lateRelease.promise;
        return enc('too late');
      });
      s.register('test.Svc', 'NotFound', () => Promise.reject(new TtrpcError(Code.NotFound, 'no such task')));
      s.register('test.Svc', 'Boom', () => Promise.reject(new Error('kaboom')));
      s.register('test.Svc', 'SyncThrow', () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- a handler throwing a non-Error is what this case tests
        throw 'plain string';
      });
      s.register('test.Svc', 'Big', () => Promise.resolve(new Uint8Array(MAX_PAYLOAD)));
      s.register('test.Svc', 'NotBytes', (() => Promise.resolve('text')) as never);
    });
  });
  after(() => env.close());

  it('round-trips a payload', async () => {
    const c = await TtrpcClient.connect(env.path);
    assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc('hello'))), 'hello');
    assert.equal((await c.call(ECHO.service, ECHO.method, new Uint8Array(0))).length, 0);
    c.close();
  });

  it('accepts the unix:// prefix', async () => {
    const c = await TtrpcClient.connect(`unix://${env.path}`);
    assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc('x'))), 'x');
    c.close();
  });

  it('serves many connections', async () => {
    const clients = await Promise.all(Array.from({ length: 5 }, () => TtrpcClient.connect(env.path)));
    await waitFor(() => env.server.connections >= 5);
    const out = await Promise.all(clients.map((c, i) => c.call(ECHO.service, ECHO.method, enc(`c${i}`))));
    assert.deepEqual(out.map(dec), ['c0', 'c1', 'c2', 'c3', 'c4']);
    for (const c of clients) c.close();
  });

  it('does not let a slow call delay a fast one on the same connection', async () => {
    const c = await TtrpcClient.connect(env.path);
    let slowDone = false;
    const slowCall = c.call('test.Svc', 'Slow', new Uint8Array(0)).then((r) => {
      slowDone = true;
      return r;
    });
    for (let i = 0; i < 20; i++) assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc(`f${i}`))), `f${i}`);
    assert.equal(slowDone, false);
    slow.open();
    assert.equal(dec(await slowCall), 'slow');
    c.close();
  });

  it('hands metadata, names and the deadline to the handler', async () => {
    const c = await TtrpcClient.connect(env.path);
    const before = Date.now();
    await c.call('test.Svc', 'Ctx', new Uint8Array(0), {
      timeoutMs: 60_000,
      metadata: [
        ['containerd-namespace-ttrpc', 'k8s.io'],
        ['Traceparent', '00-abc-def-01'],
        ['multi', 'a'],
        ['multi', 'b'],
      ],
    });
    assert.ok(seenCtx);
    assert.equal(seenCtx.service, 'test.Svc');
    assert.equal(seenCtx.method, 'Ctx');
    assert.deepEqual(seenCtx.metadata.get('containerd-namespace-ttrpc'), ['k8s.io']);
    assert.deepEqual(seenCtx.metadata.get('traceparent'), ['00-abc-def-01']);
    assert.deepEqual(seenCtx.metadata.get('multi'), ['a', 'b']);
    assert.ok(
      seenCtx.deadline !== undefined && seenCtx.deadline >= before + 59_000 && seenCtx.deadline <= Date.now() + 61_000,
    );
    assert.equal(seenCtx.signal.aborted, false);

    await c.call('test.Svc', 'Ctx', new Uint8Array(0), { metadata: { a: '1' } });
    assert.equal(seenCtx.deadline, undefined);
    assert.deepEqual([...seenCtx.metadata], [['a', ['1']]]);
    c.close();
  });

  it('answers DeadlineExceeded when timeout_nano passes, aborts the signal and drops the late result', async () => {
    const raw = await RawConn.connect(env.path);
    raw.write(requestFrame(1, { service: 'test.Svc', method: 'Hang', timeoutNano: 50_000_000n }));
    const r = await raw.next();
    assert.equal(r.header.streamId, 1);
    assert.equal(r.response.status?.code, Code.DeadlineExceeded);
    assert.ok(deadlineSignal?.aborted);
    assert.ok(deadlineSignal.reason instanceof TtrpcError && deadlineSignal.reason.code === Code.DeadlineExceeded);
    lateRelease.open();
    await new Promise((res) => setTimeout(res, 20));
    // the next frame on this connection is the echo, not the late "too late"
    await raw.echo(3, 'after deadline');
    raw.destroy();
  });

  it('answers DeadlineExceeded at once for a negative timeout_nano', async () => {
    const raw = await RawConn.connect(env.path);
    raw.write(requestFrame(1, { ...ECHO, timeoutNano: -1n }));
    assert.equal((await raw.next()).response.status?.code, Code.DeadlineExceeded);
    raw.destroy();
  });

  it('maps handler errors to statuses', async () => {
    const c = await TtrpcClient.connect(env.path);
    await rejectsWith(c.call('test.Svc', 'NotFound', new Uint8Array(0)), Code.NotFound, /^no such task$/);
    await rejectsWith(c.call('test.Svc', 'Boom', new Uint8Array(0)), Code.Unknown, /kaboom/);
    await rejectsWith(c.call('test.Svc', 'SyncThrow', new Uint8Array(0)), Code.Unknown, /plain string/);
    await rejectsWith(c.call('test.Svc', 'NotBytes', new Uint8Array(0)), Code.Internal, /Uint8Array/);
    assert.ok(env.errors.some((e) => e.kind === 'handler-error' && /kaboom/.test(e.message)));
    c.close();
  });

  it('sends ResourceExhausted instead of an oversized response, and the connection lives on', async () => {
    const c = await TtrpcClient.connect(env.path);
    await rejectsWith(c.call('test.Svc', 'Big', new Uint8Array(0)), Code.ResourceExhausted);
    assert.ok(env.errors.some((e) => e.kind === 'response-too-large'));
    assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc('still here'))), 'still here');
    c.close();
  });

  it('rejects a too-large request on the client without sending it', async () => {
    const c = await TtrpcClient.connect(env.path);
    await rejectsWith(c.call(ECHO.service, ECHO.method, new Uint8Array(MAX_PAYLOAD)), Code.ResourceExhausted);
    assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc('y'))), 'y');
    c.close();
  });
});

describe('TtrpcServer: malformed input', () => {
  let env: Awaited<ReturnType<typeof startServer>>;
  let bystander: TtrpcClient;

  before(async () => {
    env = await startServer();
    bystander = await TtrpcClient.connect(env.path);
  });
  after(async () => {
    bystander.close();
    await env.close();
  });

  /** After each case, a separate, long-lived connection must still be served. */
  async function othersStillServed(): Promise<void> {
    assert.equal(dec(await bystander.call(ECHO.service, ECHO.method, enc('bystander'))), 'bystander');
    const fresh = await TtrpcClient.connect(env.path);
    assert.equal(dec(await fresh.call(ECHO.service, ECHO.method, enc('fresh'))), 'fresh');
    fresh.close();
  }

  it('oversized frame: ResourceExhausted on its stream, payload discarded, same connection keeps working', async () => {
    const raw = await RawConn.connect(env.path);
    const len = MAX_PAYLOAD + 1;
    raw.write(rawHeader(len, 1, FrameType.Request));
    // The answer comes as soon as the header is read, before the payload.
    const r = await raw.next();
    assert.equal(r.header.streamId, 1);
    assert.equal(r.response.status?.code, Code.ResourceExhausted);
    assert.match(r.response.status?.message ?? '', /4194305/);
    // stream the payload (garbage that must not be parsed as frames)
    const chunk = Buffer.alloc(256 * 1024, 0xab);
    for (let sent = 0; sent < len; sent += chunk.length)
      raw.write(chunk.subarray(0, Math.min(chunk.length, len - sent)));
    await raw.echo(3, 'after oversized');
    assert.ok(env.errors.some((e) => e.kind === 'oversized-frame' && e.streamId === 1));
    raw.destroy();
    await othersStillServed();
  });

  it('even stream id: InvalidArgument on that stream', async () => {
    const raw = await RawConn.connect(env.path);
    raw.write(requestFrame(2, { ...ECHO, payload: enc('x') }));
    const r = await raw.next();
    assert.equal(r.header.streamId, 2);
    assert.equal(r.response.status?.code, Code.InvalidArgument);
    raw.write(requestFrame(0, ECHO));
    assert.equal((await raw.next()).header.streamId, 0);
    await raw.echo(3, 'after even');
    raw.destroy();
    await othersStillServed();
  });

  it('unknown service and unknown method: Unimplemented naming them', async () => {
    const c = await TtrpcClient.connect(env.path);
    await rejectsWith(c.call('no.Such', 'Echo', new Uint8Array(0)), Code.Unimplemented, /no\.Such/);
    await rejectsWith(c.call(ECHO.service, 'Nope', new Uint8Array(0)), Code.Unimplemented, /Nope/);
    assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc('same conn'))), 'same conn');
    c.close();
    await othersStillServed();
  });

  it('frame types other than Request: InvalidArgument on that stream', async () => {
    const raw = await RawConn.connect(env.path);
    const body = toBinary(EmptySchema, create(EmptySchema));
    for (const [id, type] of [
      [1, FrameType.Response],
      [3, FrameType.Data],
      [5, 0],
      [7, 200],
    ] as const) {
      raw.write(encodeFrame(id, type, body));
      const r = await raw.next();
      assert.equal(r.header.streamId, id);
      assert.equal(r.response.status?.code, Code.InvalidArgument);
    }
    await raw.echo(9, 'after bad types');
    raw.destroy();
    await othersStillServed();
  });

  it('undecodable Request payload: InvalidArgument on that stream', async () => {
    const raw = await RawConn.connect(env.path);
    raw.write(encodeFrame(1, FrameType.Request, new Uint8Array([0xff, 0xff, 0xff, 0xff])));
    const r = await raw.next();
    assert.equal(r.header.streamId, 1);
    assert.equal(r.response.status?.code, Code.InvalidArgument);
    assert.ok(env.errors.some((e) => e.kind === 'bad-request'));
    await raw.echo(3, 'after bad payload');
    raw.destroy();
    await othersStillServed();
  });

  it('duplicate in-flight stream id: InvalidArgument', async () => {
    const slow = gate();
    const tmpEnv = await startServer((s) => s.register('t.S', 'Slow', async () => (await slow.promise, enc('done'))));
    const raw = await RawConn.connect(tmpEnv.path);
    raw.write(requestFrame(1, { service: 't.S', method: 'Slow' }));
    raw.write(requestFrame(1, ECHO));
    const r = await raw.next();
    assert.equal(r.header.streamId, 1);
    assert.equal(r.response.status?.code, Code.InvalidArgument);
    slow.open();
    const r2 = await raw.next();
    assert.equal(dec(r2.response.payload), 'done');
    raw.destroy();
    await tmpEnv.close();
  });

  it('garbage bytes: the connection may be lost, the server is not', async () => {
    const raw = await RawConn.connect(env.path);
    // Read as a header this announces a ~1.7 GB frame: answered, then skipped
    // until the peer goes away.
    raw.write(enc('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const r = await raw.next();
    assert.equal(r.response.status?.code, Code.ResourceExhausted);
    raw.destroy();
    await raw.closed;
    await othersStillServed();
  });

  it('truncated header then close: only that connection ends', async () => {
    await waitFor(() => env.server.connections === 1); // just the bystander
    const before = env.server.connections;
    const raw = await RawConn.connect(env.path);
    await waitFor(() => env.server.connections === before + 1);
    raw.socket.end(Buffer.from([0, 0, 0, 5, 0]));
    await raw.closed;
    await waitFor(() => env.server.connections === before);
    assert.ok(env.errors.some((e) => e.kind === 'truncated-frame'));
    await othersStillServed();
  });

  it('truncated payload then close: only that connection ends', async () => {
    await waitFor(() => env.server.connections === 1);
    const before = env.server.connections;
    const raw = await RawConn.connect(env.path);
    const f = requestFrame(1, { ...ECHO, payload: enc('truncated') });
    raw.socket.write(f.subarray(0, f.length - 3));
    await waitFor(() => env.server.connections === before + 1);
    raw.socket.destroy();
    await waitFor(() => env.server.connections === before);
    await othersStillServed();
  });
});

describe('TtrpcServer: typed services', () => {
  class FakeTask {
    creates: CreateTaskRequest[] = [];
    readonly pid = 4242;
    create(req: CreateTaskRequest, ctx: CallContext) {
      this.creates.push(req);
      // `this` must be the impl: methods are called as methods
      return Promise.resolve(
        create(CreateTaskResponseSchema, { pid: this.pid + (ctx.service.endsWith('v3.Task') ? 1 : 0) }),
      );
    }
    state(req: StateRequest) {
      if (req.id === 'missing') return Promise.reject(new TtrpcError(Code.NotFound, `task ${req.id} not found`));
      return Promise.resolve({ id: req.id, bundle: '/b', pid: this.pid, execId: req.execId });
    }
    kill() {
      return {}; // google.protobuf.Empty as an init object, synchronously
    }
  }

  let server: TtrpcServer;
  let tmp: ReturnType<typeof tempSocketPath>;
  const impl = new FakeTask();

  before(async () => {
    tmp = tempSocketPath();
    server = new TtrpcServer();
    server.registerService(Task, impl);
    server.registerService(Task, impl, { name: 'containerd.task.v3.Task' });
    await server.listen({ path: tmp.path });
  });
  after(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('decodes requests, calls impl[localName] and encodes results', async () => {
    const c = await TtrpcClient.connect(tmp.path);
    const task = createClient(Task, c);
    const res = await task.create({ id: 'c1', bundle: '/run/c1', terminal: true });
    assert.equal(res.pid, 4242);
    assert.equal(res.$typeName, 'containerd.task.v2.CreateTaskResponse');
    assert.equal(impl.creates.at(-1)?.bundle, '/run/c1');
    assert.equal(impl.creates.at(-1)?.terminal, true);

    const st = await task.state({ id: 'c1', execId: 'e1' });
    assert.deepEqual([st.id, st.bundle, st.pid, st.execId], ['c1', '/b', 4242, 'e1']);
    await rejectsWith(task.state({ id: 'missing' }), Code.NotFound, /missing/);

    const empty = await task.kill({ id: 'c1', signal: 9 });
    assert.equal(empty.$typeName, 'google.protobuf.Empty');
    c.close();
  });

  it('serves the same impl under an alias service name', async () => {
    const c = await TtrpcClient.connect(tmp.path);
    const v3 = createClient(Task, c, { service: 'containerd.task.v3.Task' });
    assert.equal((await v3.create({ id: 'c2' })).pid, 4243);
    c.close();
  });

  it('answers Unimplemented, naming the method, for RPCs the impl lacks', async () => {
    const c = await TtrpcClient.connect(tmp.path);
    await rejectsWith(createClient(Task, c).pids({ id: 'c1' }), Code.Unimplemented, /Pids/);
    c.close();
  });

  it('answers InvalidArgument for a payload that does not decode', async () => {
    const c = await TtrpcClient.connect(tmp.path);
    await rejectsWith(c.call('containerd.task.v2.Task', 'Create', new Uint8Array([0x0a, 0xff])), Code.InvalidArgument);
    // valid bytes of the right type still work on this connection
    const ok = await c.call(
      'containerd.task.v2.Task',
      'Create',
      toBinary(CreateTaskRequestSchema, create(CreateTaskRequestSchema, { id: 'z' })),
    );
    assert.ok(ok.length > 0);
    c.close();
  });

  it('typed client surfaces a reply it cannot decode as Internal', async () => {
    const t2 = tempSocketPath();
    const s2 = new TtrpcServer();
    s2.register('containerd.task.v2.Task', 'State', () => Promise.resolve(new Uint8Array([0xff])));
    await s2.listen({ path: t2.path });
    const c = await TtrpcClient.connect(t2.path);
    await rejectsWith(
      createClient(Task, c).state({ id: 'x' }),
      Code.Internal,
      new RegExp(StateResponseSchema.typeName),
    );
    c.close();
    await s2.close();
    t2.cleanup();
  });
});

describe('TtrpcServer: lifecycle', () => {
  it('close() stops accepting, ends connections and fails pending calls with Unavailable', async () => {
    const hang = gate();
    let signal: AbortSignal | undefined;
    const env = await startServer((s) =>
      s.register('t.S', 'Hang', async (_p, ctx) => {
        signal = ctx.signal;
        await hang.promise;
        return enc('x');
      }),
    );
    const c = await TtrpcClient.connect(env.path);
    const closed = new Promise((res) => c.onClose(res));
    const pending = rejectsWith(c.call('t.S', 'Hang', new Uint8Array(0)), Code.Unavailable, /closed/);
    await waitFor(() => signal !== undefined);
    await env.server.close();
    await pending;
    await closed;
    assert.equal(signal?.aborted, true);
    assert.equal(env.server.connections, 0);
    assert.equal(fs.existsSync(env.path), false, 'socket file removed');
    await rejectsWith(TtrpcClient.connect(env.path), Code.Unavailable);
    await assert.rejects(env.server.listen({ path: env.path + '2' }));
    hang.open();
    await env.close();
  });

  it("listens on an inherited fd (child process, abstract socket, '@' address)", async () => {
    const name = `wasmts-ttrpc-test-${process.pid}-${Date.now()}`;
    const ns = net.createServer();
    await new Promise<void>((r) => ns.listen(`\0${name}`, r));
    const fixture = fileURLToPath(new URL('./fixtures/fd-server.ts', import.meta.url));
    // Node exposes no public fd of a listening server; _handle.fd is the Linux one.
    const fd = (ns as unknown as { _handle: { fd: number } })._handle.fd;
    assert.ok(fd > 2);
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit', fd] });
    try {
      // the child holds its own copy of the listening socket from here on
      ns.close();
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`fixture exited with ${code}`)));
      });
      const c = await TtrpcClient.connect(`unix://@${name}`);
      assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc('via fd'))), 'via fd');
      c.close();
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('listens on a caller-provided net.Server', async () => {
    const tmp = tempSocketPath();
    const ns = net.createServer();
    await new Promise<void>((r) => ns.listen(tmp.path, r));
    const s = new TtrpcServer();
    s.register(ECHO.service, ECHO.method, (p) => Promise.resolve(p));
    await s.listen({ server: ns });
    const c = await TtrpcClient.connect(tmp.path);
    assert.equal(dec(await c.call(ECHO.service, ECHO.method, enc('provided'))), 'provided');
    c.close();
    await s.close();
    assert.equal(ns.listening, false);
    tmp.cleanup();
  });

  it('rejects listen() on a path that is in use', async () => {
    const env = await startServer();
    const s = new TtrpcServer();
    await assert.rejects(s.listen({ path: env.path }), /EADDRINUSE/);
    await s.close();
    await env.close();
  });

  it('survives a logger that throws', async () => {
    const tmp = tempSocketPath();
    const s = new TtrpcServer().onError(() => {
      throw new Error('logger broke');
    });
    s.register(ECHO.service, ECHO.method, (p) => Promise.resolve(p));
    await s.listen({ path: tmp.path });
    const raw = await RawConn.connect(tmp.path);
    raw.write(requestFrame(2, ECHO));
    assert.equal((await raw.next()).response.status?.code, Code.InvalidArgument);
    await raw.echo(1, 'ok');
    raw.destroy();
    await s.close();
    tmp.cleanup();
  });
});
