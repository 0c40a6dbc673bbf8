// Seeded randomized tests: random and mutated valid frames into the decoder
// and into live server connections. Reproducible: change SEED to explore.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { CreateTaskRequestSchema, Task } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { RequestSchema } from '../../src/gen/ttrpc/ttrpc_pb.js';
import { encodeFrame, FrameDecoder, type DecodeEvent } from '../../src/ttrpc/frame.js';
import { Code, TtrpcClient, TtrpcError } from '../../src/ttrpc/index.js';
import { ECHO, RawConn, rng, startServer, waitFor } from './helpers.js';

const SEED = 0x5eed1;

function gen(rand: () => number) {
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));

  function requestPayload(): Uint8Array {
    const task = rand() < 0.3;
    return toBinary(
      RequestSchema,
      create(RequestSchema, {
        service: task
          ? pick(['containerd.task.v2.Task', 'containerd.task.v3.Task'])
          : pick([ECHO.service, 'test.Throw', 'no.Such', '']),
        method: task ? pick(['Create', 'State', 'Kill', 'Wait', 'Nope']) : pick([ECHO.method, 'Throw', 'x']),
        payload: task
          ? toBinary(CreateTaskRequestSchema, create(CreateTaskRequestSchema, { id: `t${int(100)}`, bundle: '/b' }))
          : bytes(int(40)),
        timeoutNano: pick([0n, 0n, 0n, 1n, -5n, 1_000_000n, 2n ** 62n, BigInt(int(2 ** 31))]),
        metadata: Array.from({ length: int(3) }, () => ({
          key: pick(['containerd-namespace-ttrpc', 'traceparent', 'K']),
          value: `v${int(9)}`,
        })),
      }),
    );
  }

  function validFrame(id: number): Uint8Array {
    const type = rand() < 0.9 ? 1 : pick([0, 2, 3, 255]);
    return encodeFrame(id, type, rand() < 0.95 ? requestPayload() : bytes(int(30)), rand() < 0.9 ? 0 : int(256));
  }

  function mutate(f: Uint8Array): Uint8Array {
    const b = Buffer.from(f);
    switch (int(7)) {
      case 0: // flip a bit anywhere
        if (b.length) b[int(b.length)] ^= 1 << int(8);
        return b;
      case 1: // random byte in the payload
        if (b.length > 10) b[10 + int(b.length - 10)] = int(256);
        return b;
      case 2: // truncate
        return b.subarray(0, int(b.length));
      case 3: // lie about the length (small lies keep the stream parseable-ish)
        b.writeUInt32BE(rand() < 0.8 ? int(b.length + 20) : int(2 ** 32), 0);
        return b;
      case 4: // insert junk
        return Buffer.concat([b.subarray(0, int(b.length)), bytes(int(12)), b.subarray(int(b.length))]);
      case 5: // even or zero stream id
        b.writeUInt32BE(int(4) * 2, 4);
        return b;
      default:
        return b;
    }
  }

  /** A byte stream of several frames, some mutated, sometimes pure noise; `frames` counts what went in. */
  function stream(): { bytes: Uint8Array; frames: number } {
    if (rand() < 0.1) return { bytes: bytes(int(200)), frames: 1 };
    const parts: Uint8Array[] = [];
    let id = 1;
    for (let n = 1 + int(8); n > 0; n--) {
      const f = validFrame(id);
      id += 2;
      parts.push(rand() < 0.5 ? mutate(f) : f);
    }
    return { bytes: Buffer.concat(parts), frames: parts.length };
  }

  function chunks(b: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < b.length;) {
      const n = 1 + int(rand() < 0.5 ? 8 : 64);
      out.push(b.subarray(i, i + n));
      i += n;
    }
    return out;
  }

  return { int, stream, chunks, validFrame };
}

function summary(evs: DecodeEvent[]): string[] {
  return evs.map(
    (e) => `${e.kind}:${JSON.stringify(e.header)}:${e.kind === 'frame' ? Buffer.from(e.payload).toString('hex') : ''}`,
  );
}

describe('fuzz', () => {
  it('FrameDecoder: never throws and decodes the same however the input is chunked', () => {
    const g = gen(rng(SEED));
    for (let i = 0; i < 3000; i++) {
      const s = g.stream().bytes;
      const whole = new FrameDecoder();
      const a = summary(whole.feed(s));
      const endA = whole.end();
      const split = new FrameDecoder();
      const b = summary(g.chunks(s).flatMap((c) => split.feed(c)));
      const endB = split.end();
      assert.deepEqual(b, a, `case ${i}`);
      assert.deepEqual(endB, endA, `case ${i}`);
    }
  });

  describe('live server', () => {
    let env: Awaited<ReturnType<typeof startServer>>;
    let bystander: TtrpcClient;

    before(async () => {
      env = await startServer((s) => {
        s.register('test.Throw', 'Throw', () => Promise.reject(new Error('thrown')));
        const impl = {
          create: () => Promise.resolve({ pid: 1 }),
          state: () => Promise.reject(new TtrpcError(Code.NotFound, 'nope')),
          wait: (_req: unknown, ctx: { signal: AbortSignal }) =>
            new Promise<object>((resolve) => ctx.signal.addEventListener('abort', () => resolve({}))),
        };
        s.registerService(Task, impl);
        s.registerService(Task, impl, { name: 'containerd.task.v3.Task' });
      });
      bystander = await TtrpcClient.connect(env.path);
    });
    after(async () => {
      bystander.close();
      await env.close();
    });

    it('keeps serving through ~2500 random and mutated frames on 600 connections', async () => {
      const g = gen(rng(SEED + 1));
      let frames = 0;
      for (let batch = 0; batch < 60; batch++) {
        // Draw all random input up front so it does not depend on which
        // connection happens to be accepted first.
        const plans = Array.from({ length: 10 }, () => {
          const s = g.stream();
          frames += s.frames;
          return { chunks: g.chunks(s.bytes), polite: g.int(2) === 0, delay: g.int(5) };
        });
        await Promise.all(
          plans.map(async (plan) => {
            const raw = await RawConn.connect(env.path); // its data handler throws on an oversized reply
            for (const c of plan.chunks) raw.write(c);
            // Hang up either politely (EOF) or abruptly, with replies possibly in flight.
            if (plan.polite) raw.socket.end();
            else setTimeout(() => raw.destroy(), plan.delay);
            await raw.closed;
          }),
        );
        assert.equal(
          Buffer.from(await bystander.call(ECHO.service, ECHO.method, Buffer.from(`b${batch}`))).toString(),
          `b${batch}`,
        );
      }
      assert.ok(frames > 2000, `only ${frames} frames`);
      // every fuzz connection is gone; only the bystander remains
      await waitFor(() => env.server.connections === 1);
      assert.deepEqual(
        env.errors.filter((e) => e.kind === 'internal'),
        [],
      );
      // and a fresh connection is served as usual
      const fresh = await RawConn.connect(env.path);
      await fresh.echo(1, 'alive');
      fresh.destroy();
    });
  });
});
