import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { RequestSchema, ResponseSchema, type Request } from '../../src/gen/ttrpc/ttrpc_pb.js';
import { encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD } from '../../src/ttrpc/frame.js';
import { Code, socketPath, TtrpcClient, TtrpcError } from '../../src/ttrpc/index.js';
import { rawHeader, tempSocketPath, waitFor } from './helpers.js';

interface Received {
  id: number;
  req: Request;
  socket: net.Socket;
}

/** A byte-level fake server: records requests; the test decides what (if anything) to send back. */
async function fakeServer(onRequest?: (r: Received) => void) {
  const tmp = tempSocketPath();
  const received: Received[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const d = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const ev of d.feed(chunk)) {
        if (ev.kind !== 'frame') continue;
        const r = { id: ev.header.streamId, req: fromBinary(RequestSchema, ev.payload), socket };
        received.push(r);
        onRequest?.(r);
      }
    });
  });
  await new Promise<void>((r) => server.listen(tmp.path, r));
  return {
    path: tmp.path,
    received,
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
      tmp.cleanup();
    },
  };
}

function reply(socket: net.Socket, id: number, payload: Uint8Array, status?: { code: number; message: string }): void {
  socket.write(
    encodeFrame(id, FrameType.Response, toBinary(ResponseSchema, create(ResponseSchema, { payload, status }))),
  );
}

async function rejection(p: Promise<unknown>): Promise<TtrpcError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TtrpcError, String(err));
  return err;
}

describe('TtrpcClient', () => {
  let fake: Awaited<ReturnType<typeof fakeServer>>;
  let client: TtrpcClient;
  let held: Received[];

  beforeEach(async () => {
    held = [];
    fake = await fakeServer((r) => {
      // answer "echo" at once; hold everything else for the test
      if (r.req.method === 'Echo') reply(r.socket, r.id, r.req.payload);
      else held.push(r);
    });
    client = await TtrpcClient.connect(fake.path);
  });
  afterEach(async () => {
    client.close();
    await fake.close();
  });

  it('uses odd, strictly increasing stream ids from 1 and multiplexes concurrent calls', async () => {
    const calls = [0, 1, 2, 3].map((i) => client.call('s', 'Hold', Buffer.from(`p${i}`)));
    await waitFor(() => held.length === 4);
    assert.deepEqual(
      held.map((h) => h.id),
      [1, 3, 5, 7],
    );
    // answer out of order: each caller gets its own reply
    for (const h of [...held].reverse())
      reply(h.socket, h.id, Buffer.from(`r-${Buffer.from(h.req.payload).toString()}`));
    assert.deepEqual(
      (await Promise.all(calls)).map((b) => Buffer.from(b).toString()),
      ['r-p0', 'r-p1', 'r-p2', 'r-p3'],
    );
    await client.call('s', 'Echo', new Uint8Array(0));
    assert.equal(fake.received.at(-1)?.id, 9);
  });

  it('sends service, method, metadata and timeout_nano', async () => {
    await client.call('svc.A', 'Echo', new Uint8Array([1]), { metadata: { a: '1', b: '2' } });
    await client.call('svc.A', 'Echo', new Uint8Array([1]), {
      metadata: [
        ['x', '1'],
        ['x', '2'],
      ],
      timeoutMs: 1500,
    });
    const [r1, r2] = fake.received;
    assert.equal(r1?.req.service, 'svc.A');
    assert.equal(r1?.req.method, 'Echo');
    assert.deepEqual(
      r1?.req.metadata.map((kv) => [kv.key, kv.value]),
      [
        ['a', '1'],
        ['b', '2'],
      ],
    );
    assert.equal(r1?.req.timeoutNano, 0n);
    assert.deepEqual(
      r2?.req.metadata.map((kv) => [kv.key, kv.value]),
      [
        ['x', '1'],
        ['x', '2'],
      ],
    );
    assert.equal(r2?.req.timeoutNano, 1_500_000_000n);
  });

  it('rejects with DeadlineExceeded locally, ignores the late reply, keeps working', async () => {
    const err = await rejection(client.call('s', 'Hold', new Uint8Array(0), { timeoutMs: 30 }));
    assert.equal(err.code, Code.DeadlineExceeded);
    const h = held[0];
    reply(h.socket, h.id, Buffer.from('late'));
    assert.equal(Buffer.from(await client.call('s', 'Echo', Buffer.from('next'))).toString(), 'next');
    await rejection(client.call('s', 'Echo', new Uint8Array(0), { timeoutMs: 0 })).then((e) =>
      assert.equal(e.code, Code.DeadlineExceeded),
    );
  });

  it('cancels a call through an AbortSignal', async () => {
    const ac = new AbortController();
    const p = rejection(client.call('s', 'Hold', new Uint8Array(0), { signal: ac.signal }));
    await waitFor(() => held.length === 1);
    ac.abort();
    assert.equal((await p).code, Code.Canceled);
    const pre = new AbortController();
    pre.abort();
    assert.equal(
      (await rejection(client.call('s', 'Echo', new Uint8Array(0), { signal: pre.signal }))).code,
      Code.Canceled,
    );
  });

  it("turns a status into TtrpcError with the server's code and message", async () => {
    const p = rejection(client.call('s', 'Hold', new Uint8Array(0)));
    await waitFor(() => held.length === 1);
    reply(held[0].socket, held[0].id, new Uint8Array(0), { code: Code.AlreadyExists, message: 'task exists' });
    const err = await p;
    assert.equal(err.code, Code.AlreadyExists);
    assert.equal(err.message, 'task exists');
    assert.equal(String(err), 'rpc error: code = AlreadyExists desc = task exists');
  });

  it('fails only the affected call on an oversized or undecodable reply', async () => {
    const big = rejection(client.call('s', 'Hold', new Uint8Array(0)));
    const bad = rejection(client.call('s', 'Hold', new Uint8Array(0)));
    const good = client.call('s', 'Hold', new Uint8Array(0));
    await waitFor(() => held.length === 3);
    const [h1, h2, h3] = held as [Received, Received, Received];
    h1.socket.write(rawHeader(MAX_PAYLOAD + 5, h1.id, FrameType.Response));
    h1.socket.write(Buffer.alloc(MAX_PAYLOAD + 5));
    h2.socket.write(encodeFrame(h2.id, FrameType.Response, new Uint8Array([0xff, 0xff])));
    h2.socket.write(encodeFrame(999, FrameType.Response, new Uint8Array(0))); // nobody's stream: ignored
    reply(h3.socket, h3.id, Buffer.from('good'));
    assert.equal((await big).code, Code.ResourceExhausted);
    assert.equal((await bad).code, Code.Internal);
    assert.equal(Buffer.from(await good).toString(), 'good');
  });

  it('rejects pending and future calls with Unavailable when the server goes away', async () => {
    const reasons: TtrpcError[] = [];
    client.onClose((r) => reasons.push(r));
    const pending = rejection(client.call('s', 'Hold', new Uint8Array(0)));
    await waitFor(() => held.length === 1);
    for (const s of fake.sockets) s.destroy();
    const err = await pending;
    assert.equal(err.code, Code.Unavailable);
    assert.match(err.message, /closed/);
    assert.equal(client.closed, true);
    assert.equal((await rejection(client.call('s', 'Echo', new Uint8Array(0)))).code, Code.Unavailable);
    assert.equal(reasons.length, 1);
    assert.equal(reasons[0]?.code, Code.Unavailable);
    // a listener added after the fact still hears about it
    const late = await new Promise<TtrpcError>((r) => client.onClose(r));
    assert.equal(late.code, Code.Unavailable);
  });

  it('close() rejects pending calls with Unavailable', async () => {
    const pending = rejection(client.call('s', 'Hold', new Uint8Array(0)));
    client.close();
    const err = await pending;
    assert.equal(err.code, Code.Unavailable);
    assert.match(err.message, /client closed/);
  });
});

describe('TtrpcClient.connect', () => {
  it('rejects with Unavailable when nothing listens', async () => {
    const tmp = tempSocketPath();
    const err = await rejection(TtrpcClient.connect(`unix://${tmp.path}`));
    assert.equal(err.code, Code.Unavailable);
    assert.match(err.message, /ENOENT/);
    tmp.cleanup();
  });

  it('normalizes addresses', () => {
    assert.equal(socketPath('unix:///run/a.sock'), '/run/a.sock');
    assert.equal(socketPath('/run/a.sock'), '/run/a.sock');
    assert.equal(socketPath('@abstract'), '\0abstract');
  });
});
