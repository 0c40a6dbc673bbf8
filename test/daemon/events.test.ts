// The events publisher: ordered delivery with retries, bare type URLs, and a
// bound after which an undeliverable event is dropped with a log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { EmptySchema } from '@bufbuild/protobuf/wkt';
import { TtrpcServer } from '../../src/ttrpc/server.js';
import { Code, TtrpcError } from '../../src/ttrpc/status.js';
import { ForwardRequestSchema } from '../../src/gen/containerd/services/events/ttrpc/v1/events_pb.js';
import { TaskStartSchema, TaskExitSchema } from '../../src/gen/containerd/events/task_pb.js';
import { EventPublisher } from '../../src/daemon/events.js';
import type { Logger } from '../../src/daemon/log.js';
import { sleep } from '../harness/index.js';

function tmpSocket(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-events-')), 'events.sock');
}

function recordingLog(lines: string[]): Logger {
  const add = (level: string) => (msg: string) => void lines.push(`${level}: ${msg}`);
  return { debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error') };
}

test('events arrive in order with bare type URLs, after the server recovers from failures', async () => {
  const socket = tmpSocket();
  const seen: { topic: string; typeUrl: string; ns: string; ts: bigint }[] = [];
  let failuresLeft = 3;
  const server = new TtrpcServer();
  server.register('containerd.services.events.ttrpc.v1.Events', 'Forward', (payload) => {
    if (failuresLeft-- > 0) return Promise.reject(new TtrpcError(Code.Unavailable, 'not yet'));
    const req = fromBinary(ForwardRequestSchema, payload);
    const env = req.envelope!;
    seen.push({ topic: env.topic, typeUrl: env.event!.typeUrl, ns: env.namespace, ts: env.timestamp!.seconds });
    return Promise.resolve(toBinary(EmptySchema, create(EmptySchema)));
  });
  await server.listen({ path: socket });
  const lines: string[] = [];
  const pub = new EventPublisher({ address: `unix://${socket}`, namespace: 'ns1', log: recordingLog(lines) });
  for (let i = 0; i < 20; i++) {
    pub.publish('/tasks/start', TaskStartSchema, create(TaskStartSchema, { containerId: `c${i}`, pid: i }));
  }
  pub.publish('/tasks/exit', TaskExitSchema, create(TaskExitSchema, { containerId: 'c', exitStatus: 3 }));
  await pub.drain(10_000);
  pub.close();
  await server.close();
  assert.equal(seen.length, 21);
  assert.deepEqual(
    seen.slice(0, 3).map((s) => s.topic),
    ['/tasks/start', '/tasks/start', '/tasks/start'],
  );
  assert.equal(seen[20].topic, '/tasks/exit');
  assert.equal(seen[0].typeUrl, 'containerd.events.TaskStart', 'containerd 1.6 needs the bare name');
  assert.equal(seen[20].typeUrl, 'containerd.events.TaskExit');
  assert.ok(seen.every((s) => s.ns === 'ns1' && s.ts > 0n));
  assert.deepEqual(
    lines.filter((l) => l.startsWith('error')),
    [],
  );
});

test('publish never throws, and an event nobody accepts is dropped with a log line after the bound', async () => {
  const lines: string[] = [];
  const pub = new EventPublisher({
    address: `unix://${tmpSocket()}`, // nothing listens
    namespace: 'ns1',
    log: recordingLog(lines),
    giveUpAfterMs: 300,
  });
  assert.doesNotThrow(() =>
    pub.publish('/tasks/start', TaskStartSchema, create(TaskStartSchema, { containerId: 'x' })),
  );
  await pub.drain(5_000);
  pub.close();
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^error: dropped event \/tasks\/start after 300 ms/);
});

test('an events socket that comes back gets the queued events', async () => {
  const socket = tmpSocket();
  const lines: string[] = [];
  const pub = new EventPublisher({ address: socket, namespace: 'n', log: recordingLog(lines) });
  pub.publish('/tasks/start', TaskStartSchema, create(TaskStartSchema, { containerId: 'late' }));
  await sleep(400); // a few failed attempts
  const got: string[] = [];
  const server = new TtrpcServer();
  server.register('containerd.services.events.ttrpc.v1.Events', 'Forward', (payload) => {
    got.push(fromBinary(ForwardRequestSchema, payload).envelope!.topic);
    return Promise.resolve(new Uint8Array());
  });
  await server.listen({ path: socket });
  await pub.drain(5_000);
  pub.close();
  await server.close();
  assert.deepEqual(got, ['/tasks/start']);
  assert.deepEqual(lines, []);
});
