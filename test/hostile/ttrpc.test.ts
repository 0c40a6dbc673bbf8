// Hostile ttrpc against a live shim daemon: a container runs under a private
// containerd, and this file talks to its daemon's socket directly, byte by
// byte: garbage, truncated frames, oversized lengths, even stream ids,
// unknown services and methods, undecodable payloads, requests no containerd
// would send, and thousands of connections opened and dropped. Every case
// must get the right status or a closed connection; afterwards containerd
// still manages the container, the daemon's fd count is back at its
// baseline, and the container exits with the right status. A second
// container runs on the same long-lived daemon (its own socket) throughout:
// nothing sent to the target's socket may touch it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  collect,
  fdCount,
  fdTargets,
  PLATFORM,
  RUNTIME,
  settledProblems,
  setupSuite,
  sleep,
  type Suite,
  until,
  E2E_TEST_TIMEOUT as T,
} from '../harness/index.js';
import type { ChildProcess } from 'node:child_process';
import { RawConn, rawHeader, requestFrame, rng } from '../ttrpc/helpers.js';
import { encodeFrame, FrameType, MAX_PAYLOAD } from '../../src/ttrpc/frame.js';
import { Code, codeName, TtrpcError } from '../../src/ttrpc/status.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import {
  ExecProcessRequestSchema,
  StateRequestSchema,
  StateResponseSchema,
  Task,
  WaitRequestSchema,
} from '../../src/gen/containerd/task/v2/shim_pb.js';
import { Status } from '../../src/gen/containerd/types/task/task_pb.js';
import { AnySchema } from '@bufbuild/protobuf/wkt';

const TASK = 'containerd.task.v2.Task';

let s: Suite;
let id: string;
let socket: string;
let shimPid: number;
let baselineFds: number;
let logOffset = 0;
/** The other container on the same daemon: `ctr run --rm` attached, printing a tick every 100 ms. */
let bystander: { id: string; pid: number; run: ChildProcess; out: { text(): string }; exited: Promise<number | null> };

before(
  async () => {
    s = await setupSuite('hrpc');
    id = s.id('target');
    await s.runDetached(['/probe.wasm', 'daemon', '200'], { id, flags: ['--null-io'] });
    await s.waitStatus(id, 'RUNNING');
    socket = s.socketFor(id);
    shimPid = s.shimPid(id);
    const other = s.id('bystander');
    const run = s.c.ctrSpawn(
      ['run', '--rm', '--runtime', RUNTIME, '--platform', PLATFORM, s.image, other, '/probe.wasm', 'daemon', '100'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = collect(run.stdout);
    const exited = new Promise<number | null>((resolve) => run.on('close', (code) => resolve(code)));
    await s.waitStatus(other, 'RUNNING');
    await until("the bystander's first tick", () => out.text().includes('tick 0\n'), 10_000);
    bystander = { id: other, pid: (await s.tasks()).get(other)!.pid, run, out, exited };
    assert.equal(s.shimPid(other), shimPid, 'both containers on the one daemon');
    assert.notEqual(s.socketFor(other), socket, 'each on its own socket');
    // let the daemon settle (warm child, log FIFOs, events connection)
    await sleep(1_500);
    await s.ctrOk(['task', 'ls']);
    baselineFds = fdCount(shimPid);
    logOffset = s.c.log().length;
  },
  { timeout: 120_000 },
);

after(async () => {
  bystander?.run.kill('SIGKILL');
  await s?.teardown();
});

function stateFrame(streamId: number, service = TASK): Uint8Array {
  return requestFrame(streamId, {
    service,
    method: 'State',
    payload: toBinary(StateRequestSchema, create(StateRequestSchema, { id })),
  });
}

interface Reply {
  streamId: number;
  code: number;
  message: string;
  payload: Uint8Array;
}

async function nextReply(c: RawConn, timeoutMs = 3000): Promise<Reply> {
  const r = await c.next(timeoutMs);
  return {
    streamId: r.header.streamId,
    code: r.response.status?.code ?? 0,
    message: r.response.status?.message ?? '',
    payload: r.response.payload,
  };
}

/** Every reply until the server closes the connection (or timeoutMs passes: closed=false). */
async function repliesUntilClosed(c: RawConn, timeoutMs = 5000): Promise<{ replies: Reply[]; closed: boolean }> {
  const replies: Reply[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      replies.push(await nextReply(c, Math.max(1, deadline - Date.now())));
    } catch (err) {
      const msg = (err as Error).message;
      if (/closed before a response/.test(msg)) return { replies, closed: true };
      if (/timed out/.test(msg)) return { replies, closed: false };
      throw err;
    }
  }
}

function expectCode(r: Reply, code: Code, streamId: number, pattern?: RegExp): void {
  assert.equal(r.streamId, streamId, `reply on stream ${r.streamId}, want ${streamId}`);
  assert.equal(r.code, code, `want ${codeName(code)}, got ${codeName(r.code)}: ${r.message}`);
  if (pattern) assert.match(r.message, pattern);
}

async function expectServed(c: RawConn, streamId: number): Promise<void> {
  c.write(stateFrame(streamId));
  const r = await nextReply(c);
  expectCode(r, Code.OK, streamId);
  const st = fromBinary(StateResponseSchema, r.payload);
  assert.equal(st.id, id);
  assert.equal(st.status, Status.RUNNING);
}

/** containerd still manages the task through its own connection to the daemon. */
async function containerdStillServes(): Promise<void> {
  const t = (await s.tasks()).get(id);
  assert.equal(t?.status, 'RUNNING', `ctr task ls: ${JSON.stringify(t)}`);
  const ps = await s.ctrOk(['task', 'ps', id]);
  assert.match(ps.stdout, new RegExp(`^${t.pid}\\s`, 'm'));
}

async function fdsBackToBaseline(): Promise<void> {
  try {
    await until('the daemon fd count to return to its baseline', () => fdCount(shimPid) <= baselineFds, 5_000);
  } catch (err) {
    throw new Error(
      `${(err as Error).message}: baseline ${baselineFds}, now ${fdCount(shimPid)}\n${fdTargets(shimPid).join('\n')}`,
      { cause: err },
    );
  }
}

const PROTOCOL_CODES = new Set<number>([Code.InvalidArgument, Code.ResourceExhausted, Code.Unimplemented]);

test('garbage bytes: only protocol errors come back, then the connection closes', T, async () => {
  const rand = rng(0x6a7ba6e);
  const int = (n: number) => Math.floor(rand() * n);
  let replies = 0;
  for (let i = 0; i < 60; i++) {
    const c = await RawConn.connect(socket);
    const junk = Buffer.from(
      Array.from({ length: (i % 3 === 1 ? 11 : 1) + int(i % 3 === 0 ? 64 : 4096) }, () => int(256)),
    );
    if (i % 3 === 1) {
      // a third of them start like a request frame, so the junk reaches the decoders behind the framing
      junk.writeUInt32BE(Math.min(junk.length - 10, 200), 0);
      junk.writeUInt32BE(2 * i + 1, 4);
      junk[8] = 1;
    }
    c.write(junk);
    c.socket.end();
    const got = await repliesUntilClosed(c);
    assert.ok(got.closed, `case ${i}: the daemon kept the connection open after EOF`);
    for (const r of got.replies) {
      assert.ok(PROTOCOL_CODES.has(r.code), `case ${i}: unexpected ${codeName(r.code)}: ${r.message}`);
      replies++;
    }
  }
  assert.ok(replies > 0, 'no garbage case reached a decoder');
  await containerdStillServes();
});

test('a truncated header or payload: no reply, the connection closes at EOF', T, async () => {
  for (const bytes of [
    Buffer.from([0, 0, 0]),
    rawHeader(40, 1, FrameType.Request).subarray(0, 9),
    Buffer.concat([rawHeader(100, 1, FrameType.Request), Buffer.alloc(50, 7)]),
    stateFrame(1).subarray(0, stateFrame(1).length - 1),
  ]) {
    const c = await RawConn.connect(socket);
    c.write(bytes);
    // the daemon waits for the rest (no reply, connection open) ...
    const early = await repliesUntilClosed(c, 300);
    assert.deepEqual(early, { replies: [], closed: false });
    // ... and closes once the peer ends the stream inside the frame
    c.socket.end();
    const late = await repliesUntilClosed(c);
    assert.deepEqual(late, { replies: [], closed: true });
  }
  await containerdStillServes();
});

test(
  'a length over 4 MiB: ResourceExhausted on that stream at once, its payload skipped, the connection still usable',
  T,
  async () => {
    const c = await RawConn.connect(socket);
    try {
      c.write(rawHeader(MAX_PAYLOAD + 1, 1, FrameType.Request));
      expectCode(await nextReply(c), Code.ResourceExhausted, 1, /exceeds maximum message size/);
      // the payload streams past in pieces and is dropped
      const piece = Buffer.alloc(256 * 1024, 0xab);
      for (let sent = 0; sent < MAX_PAYLOAD + 1; sent += piece.length)
        c.write(piece.subarray(0, Math.min(piece.length, MAX_PAYLOAD + 1 - sent)));
      await expectServed(c, 3);
      c.write(rawHeader(0xffffffff, 5, FrameType.Request));
      expectCode(await nextReply(c), Code.ResourceExhausted, 5);
    } finally {
      c.destroy();
    }
    await containerdStillServes();
  },
);

test('even stream ids are refused with InvalidArgument; odd ones keep working', T, async () => {
  const c = await RawConn.connect(socket);
  try {
    for (const sid of [0, 2, 4, 0xfffffffe]) {
      c.write(stateFrame(sid));
      expectCode(await nextReply(c), Code.InvalidArgument, sid, /StreamID must be odd/);
    }
    await expectServed(c, 7);
  } finally {
    c.destroy();
  }
});

test('unknown services and methods get Unimplemented; the v3 service name is served', T, async () => {
  const c = await RawConn.connect(socket);
  try {
    const cases: [string, string][] = [
      ['containerd.task.v2.Nope', 'State'],
      ['', ''],
      [TASK, 'Frobnicate'],
      [TASK, 'state'],
      ['containerd.services.events.ttrpc.v1.Events', 'Forward'],
      ['grpc.health.v1.Health', 'Check'],
    ];
    let sid = 1;
    for (const [service, method] of cases) {
      c.write(requestFrame(sid, { service, method, payload: new Uint8Array([1, 2, 3]) }));
      expectCode(await nextReply(c), Code.Unimplemented, sid, /unknown (service|method)/);
      sid += 2;
    }
    c.write(stateFrame(sid, 'containerd.task.v3.Task'));
    expectCode(await nextReply(c), Code.OK, sid);
  } finally {
    c.destroy();
  }
});

test('undecodable payloads, wrong frame types, reused and expired streams: each gets its status', T, async () => {
  const c = await RawConn.connect(socket);
  try {
    // a Request frame whose payload is not a Request
    c.write(
      encodeFrame(
        1,
        FrameType.Request,
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      ),
    );
    expectCode(await nextReply(c), Code.InvalidArgument, 1, /unmarshal request error/);
    // a Request whose inner payload is not a StateRequest
    c.write(requestFrame(3, { service: TASK, method: 'State', payload: Buffer.from([0x0a, 0x7f, 0x41]) }));
    expectCode(await nextReply(c), Code.InvalidArgument, 3, /cannot decode containerd\.task\.v2\.StateRequest/);
    // frames a client must not send
    for (const [sid, type] of [
      [5, FrameType.Response],
      [7, FrameType.Data],
      [9, 0],
      [11, 255],
    ] as const) {
      c.write(encodeFrame(sid, type, new Uint8Array([8, 1])));
      expectCode(await nextReply(c), Code.InvalidArgument, sid, /unexpected frame type/);
    }
    // an empty payload is a Request with empty names
    c.write(encodeFrame(13, FrameType.Request, new Uint8Array(0)));
    expectCode(await nextReply(c), Code.Unimplemented, 13);
    // a deadline already passed
    c.write(
      requestFrame(15, {
        service: TASK,
        method: 'State',
        payload: toBinary(StateRequestSchema, create(StateRequestSchema, { id })),
        timeoutNano: -1n,
      }),
    );
    expectCode(await nextReply(c), Code.DeadlineExceeded, 15);
    // Wait blocks; a second request on its stream id while it is in flight is refused
    const wait = requestFrame(17, {
      service: TASK,
      method: 'Wait',
      payload: toBinary(WaitRequestSchema, create(WaitRequestSchema, { id })),
    });
    c.write(wait);
    c.write(wait);
    expectCode(await nextReply(c), Code.InvalidArgument, 17, /already in use/);
    // a Wait with a short deadline expires; the container runs on
    c.write(
      requestFrame(19, {
        service: TASK,
        method: 'Wait',
        payload: toBinary(WaitRequestSchema, create(WaitRequestSchema, { id })),
        timeoutNano: 50_000_000n,
      }),
    );
    expectCode(await nextReply(c), Code.DeadlineExceeded, 19);
    await expectServed(c, 21);
  } finally {
    // the first Wait (stream 17) is still in flight: dropping the connection abandons it
    c.destroy();
  }
  await containerdStillServes();
});

test('task requests no containerd would send get errors, not crashes', T, async () => {
  const conn = await TtrpcClient.connect(socket);
  const task = createClient(Task, conn);
  const code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'OK';
    } catch (err) {
      if (!(err instanceof TtrpcError)) throw err;
      return codeName(err.code);
    }
  };
  try {
    assert.equal(await code(task.state({ id: 'no-such-container' })), 'NotFound');
    assert.equal(await code(task.kill({ id: 'no-such-container', signal: 9 })), 'NotFound');
    assert.equal(await code(task.state({ id, execId: 'no-such-exec' })), 'NotFound');
    assert.equal(await code(task.create({ id: '', bundle: '/nonexistent' })), 'InvalidArgument');
    assert.equal(await code(task.create({ id: 'a/b', bundle: '/nonexistent' })), 'InvalidArgument');
    assert.equal(await code(task.create({ id, bundle: s.c.bundleDir(id) })), 'AlreadyExists');
    assert.equal(await code(task.create({ id: 'hostile-nobundle', bundle: '/nonexistent/bundle' })), 'InvalidArgument');
    assert.equal(await code(task.delete({ id })), 'FailedPrecondition', 'delete of a running task');
    assert.equal(await code(task.start({ id })), 'FailedPrecondition', 'start of a running task');
    assert.equal(await code(task.exec({ id, execId: 'x' })), 'InvalidArgument', 'exec without a spec');
    assert.equal(
      await code(
        task.exec({
          id,
          execId: 'y',
          spec: {
            typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
            value: Buffer.from('{not json'),
          },
        }),
      ),
      'InvalidArgument',
    );
    // Shutdown while a container lives is ignored
    assert.equal(await code(task.shutdown({ id })), 'OK');
    await sleep(200);
  } finally {
    conn.close();
  }
  await containerdStillServes();
});

// containerd validates exec ids (identifiers.Validate) before they reach a
// shim, but the shim puts the id into a file name in the bundle
// (Container.exec writes `exec-<id>.pid`, removeExec deletes it) without any
// check, so an id with "/" and ".." names a file anywhere on the host.
test(
  'an exec id with path separators is refused and writes nothing outside the bundle',
  {
    ...T,
  },
  async () => {
    const target = path.join(s.c.tmp, `escaped-${process.pid}`);
    const execId = `/../../../../../../../../..${target}`;
    const conn = await TtrpcClient.connect(socket);
    const task = createClient(Task, conn);
    const spec = create(AnySchema, {
      typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
      value: Buffer.from(JSON.stringify({ args: ['/probe.wasm', 'sleep', '0.2'], cwd: '/' })),
    });
    let err: unknown;
    let escaped: boolean;
    try {
      await task.exec(create(ExecProcessRequestSchema, { id, execId, spec }));
    } catch (e) {
      err = e;
    } finally {
      escaped = fs.existsSync(`${target}.pid`);
      // if it ran, let it go before the connection does (Delete also removes the file it wrote)
      await task.kill({ id, execId, signal: 9 }).catch(() => undefined);
      await sleep(300);
      await task.delete({ id, execId }).catch(() => undefined);
      conn.close();
      fs.rmSync(`${target}.pid`, { force: true });
    }
    assert.equal(escaped, false, `the daemon wrote ${target}.pid outside the bundle`);
    assert.ok(err instanceof TtrpcError && err.code === Code.InvalidArgument, `exec with id ${execId}: ${String(err)}`);
  },
);

test(
  'thousands of connections opened and dropped: the daemon keeps serving and its fd count returns',
  { timeout: 120_000 },
  async () => {
    const TOTAL = 3000;
    const BATCH = 100; // under the listen backlog (128)
    const t0 = Date.now();
    const kinds = { dropped: 0, partial: 0, abandonedWait: 0, served: 0, hungUp: 0 };
    const waitFrame = requestFrame(1, {
      service: TASK,
      method: 'Wait',
      payload: toBinary(WaitRequestSchema, create(WaitRequestSchema, { id })),
    });
    for (let done = 0; done < TOTAL; done += BATCH) {
      await Promise.all(
        Array.from({ length: BATCH }, async (_, j) => {
          const n = done + j;
          if (n % 5 === 0) {
            // connect and vanish at once
            await new Promise<void>((resolve) => {
              const sock = net.createConnection({ path: socket });
              sock.on('error', () => resolve());
              sock.on('connect', () => {
                sock.destroy();
                resolve();
              });
            });
            kinds.dropped++;
            return;
          }
          const c = await RawConn.connect(socket);
          switch (n % 5) {
            case 1: // half a header, then gone
              c.write(Buffer.from([0, 0, 1]));
              c.destroy();
              kinds.partial++;
              break;
            case 2: // a Wait that blocks, abandoned by an abrupt close
              c.write(waitFrame);
              await sleep(1);
              c.destroy();
              kinds.abandonedWait++;
              break;
            case 3: // a real request, answered, then EOF
              await expectServed(c, 1);
              c.socket.end();
              await c.closed;
              kinds.served++;
              break;
            default: // EOF right away
              c.socket.end();
              await c.closed;
              kinds.hungUp++;
          }
        }),
      );
    }
    const ms = Date.now() - t0;
    process.stdout.write(
      `# ${TOTAL} connections in ${ms} ms: ${JSON.stringify(kinds)}; daemon fds: baseline ${baselineFds}, right after ${fdCount(shimPid)}\n`,
    );
    await fdsBackToBaseline();
    await containerdStillServes();
    // and a fresh client is served as usual
    const c = await RawConn.connect(socket);
    await expectServed(c, 1);
    c.destroy();
  },
);

/** "tick 0\ntick 1\n…": numbers in order with none missing. */
function ticks(text: string): number[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(/^tick (\d+)$/.exec(l)?.[1] ?? NaN));
}

test(
  'the other container on the same daemon was untouched: still running and printing, State answers, it exits with its status',
  T,
  async () => {
    const t = (await s.tasks()).get(bystander.id);
    assert.deepEqual(t, { pid: bystander.pid, status: 'RUNNING' });
    const seen = ticks(bystander.out.text());
    assert.ok(
      seen.every((n, i) => n === i),
      `ticks in order, none lost: ${seen.slice(0, 5).join(',')}…${seen.slice(-5).join(',')}`,
    );
    const before = seen.length;
    await until('the bystander to keep printing', () => ticks(bystander.out.text()).length >= before + 3, 5_000);
    // its own socket answers State, from the same daemon
    const conn = await TtrpcClient.connect(s.socketFor(bystander.id));
    try {
      const task = createClient(Task, conn);
      const st = await task.state({ id: bystander.id });
      assert.equal(st.status, Status.RUNNING);
      assert.equal(st.pid, bystander.pid);
      assert.equal((await task.connect({ id: bystander.id })).shimPid, shimPid);
    } finally {
      conn.close();
    }
    const ps = await s.ctrOk(['task', 'ps', bystander.id]);
    assert.match(ps.stdout, new RegExp(`^${bystander.pid}\\s`, 'm'));
    await s.ctrOk(['task', 'kill', '-s', 'SIGTERM', bystander.id]);
    assert.equal(await bystander.exited, 143, 'ctr run --rm reports SIGTERM');
    assert.ok(
      ticks(bystander.out.text()).every((n, i) => n === i),
      'its output stayed whole',
    );
    assert.equal((await s.tasks()).has(bystander.id), false, 'deleted by ctr run --rm');
  },
);

test(
  'afterwards: fds at baseline, no crash logged, the container exits with its status and nothing is left',
  T,
  async () => {
    await fdsBackToBaseline();
    const log = s.c.log().slice(logOffset);
    assert.doesNotMatch(log, /uncaught exception|unhandled rejection|ttrpc: unexpected error/i);
    // the protocol errors were logged by the daemon as warnings (not silently dropped)
    assert.match(log, /ttrpc: StreamID must be odd/);
    await s.ctrOk(['task', 'kill', '-s', 'SIGTERM', id]);
    await s.waitStatus(id, 'STOPPED');
    const d = await s.ctrOk(['task', 'delete', id]);
    assert.match(d.stderr, /exit code 143\b/);
    await s.ctrOk(['container', 'delete', id]);
    assert.deepEqual(await settledProblems(s.c, [id, bystander.id]), []);
    assert.deepEqual(await s.leftovers(), []);
  },
);
