// Interceptors and per-call context values, through a real socket: the order
// they run in, what they see, values shared with the handler and never between calls.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { StateResponseSchema, Task, type StateRequest } from '../../src/gen/containerd/task/v2/shim_pb.js';
import {
  Code,
  createClient,
  createContextKey,
  TtrpcClient,
  TtrpcError,
  TtrpcServer,
  type CallContext,
} from '../../src/ttrpc/index.js';
import { ECHO, tempSocketPath } from './helpers.js';

const CALLER = createContextKey('nobody', { description: 'caller' });

async function withServer(setup: (s: TtrpcServer) => void, run: (c: TtrpcClient) => Promise<void>): Promise<void> {
  const tmp = tempSocketPath();
  const server = new TtrpcServer();
  setup(server);
  await server.listen({ path: tmp.path });
  const client = await TtrpcClient.connect(tmp.path);
  try {
    await run(client);
  } finally {
    client.close();
    await server.close();
    tmp.cleanup();
  }
}

describe('interceptors', () => {
  it('run outermost first around the handler, see the decoded request and response, and share values with it', async () => {
    const seen: string[] = [];
    const impl = {
      state: (req: StateRequest, ctx: CallContext) => {
        seen.push(`handler ${req.id} as ${ctx.values.get(CALLER)}`);
        return create(StateResponseSchema, { id: req.id, pid: 7 });
      },
    };
    await withServer(
      (s) =>
        s
          .use((next) => async (req) => {
            seen.push(`outer ${req.method.name} ${req.ctx.service}`);
            req.ctx.values.set(CALLER, 'outer');
            const res = await next(req);
            seen.push(`outer saw pid ${String(Reflect.get(res, 'pid'))}`);
            return res;
          })
          .use((next) => (req) => {
            seen.push(`inner ${String(Reflect.get(req.message, 'id'))} as ${req.ctx.values.get(CALLER)}`);
            return next(req);
          })
          .registerService(Task, impl),
      async (c) => {
        const res = await createClient(Task, c).state({ id: 'c1' });
        assert.equal(res.pid, 7);
      },
    );
    assert.deepEqual(seen, [
      'outer State containerd.task.v2.Task',
      'inner c1 as outer',
      'handler c1 as outer',
      'outer saw pid 7',
    ]);
  });

  it('give every call fresh values: nothing set in one call is seen by the next', async () => {
    const callers: string[] = [];
    let calls = 0;
    await withServer(
      (s) =>
        s
          .use((next) => (req) => {
            callers.push(req.ctx.values.get(CALLER));
            if (calls++ === 0) req.ctx.values.set(CALLER, 'first');
            return next(req);
          })
          .registerService(Task, { state: (req: StateRequest) => ({ id: req.id }) }),
      async (c) => {
        const task = createClient(Task, c);
        await task.state({ id: 'a' });
        await task.state({ id: 'b' });
      },
    );
    assert.deepEqual(callers, ['nobody', 'nobody']);
  });

  it('can map a handler error to another status once, for every method', async () => {
    await withServer(
      (s) =>
        s
          .use((next) => async (req) => {
            try {
              return await next(req);
            } catch (err) {
              throw new TtrpcError(Code.FailedPrecondition, `mapped: ${(err as Error).message}`);
            }
          })
          .registerService(Task, {
            state: () => {
              throw new Error('plain');
            },
          }),
      async (c) => {
        await assert.rejects(createClient(Task, c).state({ id: 'x' }), (err: unknown) => {
          assert.ok(err instanceof TtrpcError);
          assert.equal(err.code, Code.FailedPrecondition);
          assert.equal(err.message, 'mapped: plain');
          return true;
        });
      },
    );
  });

  it('also wrap a method the impl lacks (Unimplemented) but not raw handlers', async () => {
    const names: string[] = [];
    await withServer(
      (s) =>
        s
          .use((next) => (req) => {
            names.push(req.method.name);
            return next(req);
          })
          .registerService(Task, {})
          .register(ECHO.service, ECHO.method, (p) => Promise.resolve(p)),
      async (c) => {
        await assert.rejects(createClient(Task, c).pids({ id: 'x' }), (err: unknown) => {
          assert.ok(err instanceof TtrpcError);
          return err.code === Code.Unimplemented;
        });
        const echoed = await c.call(ECHO.service, ECHO.method, new Uint8Array([1, 2]));
        assert.deepEqual([...echoed], [1, 2]);
      },
    );
    assert.deepEqual(names, ['Pids']);
  });
});
