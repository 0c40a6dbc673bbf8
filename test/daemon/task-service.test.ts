// The Task service in process, over a fake engine: the state machine, the
// error kinds (and ttrpc codes) of wrong-state calls, exit statuses and the
// events containerd sees. No containerd, no Wasm child.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { AnySchema, anyUnpack } from '@bufbuild/protobuf/wkt';
import { MetricsSchema } from '../../src/gen/cgroups/v1/metrics_pb.js';
import { Status } from '../../src/gen/containerd/types/task/task_pb.js';
import { Code } from '../../src/ttrpc/status.js';
import { DELETE_RESPONSE_FILE, SHIM_PID_FILE, INIT_PID_FILE as PID_FILE } from '../../src/bundle/files.js';
import { VERSION } from '../../src/version.js';
import { harness, makeBundle, rejectsWith, settle, v2Call, type Harness } from './in-process.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A service with container `id` created (not started). */
async function withContainer(id: string): Promise<Harness & { bundle: string }> {
  const h = harness();
  dirs.push(h.dir);
  const bundle = makeBundle(h.dir, id);
  await h.calls.create(id, bundle);
  return { ...h, bundle };
}

const PRECONDITION = ['failed-precondition', Code.FailedPrecondition] as const;
const NOT_FOUND = ['not-found', Code.NotFound] as const;
const INVALID = ['invalid-argument', Code.InvalidArgument] as const;

describe('Task service lifecycle', () => {
  test('create, start, pause, resume, kill, wait, delete: states, pids, exit status and events in order', async () => {
    const { calls, service, engine, events, bundle } = await withContainer('life');
    const init = engine.instance('life');
    assert.equal(init.spec.modulePath, path.join(bundle, 'rootfs', 'app.wasm'));
    assert.deepEqual(init.spec.args, ['/app.wasm']);
    assert.ok(init.spec.env.includes('PWD=/'));
    assert.equal(fs.readFileSync(path.join(bundle, PID_FILE), 'utf8'), String(init.pid));
    assert.equal(fs.readFileSync(path.join(bundle, SHIM_PID_FILE), 'utf8'), String(process.pid));

    let state = await calls.state('life');
    assert.deepEqual([state.status, state.pid, state.bundle, state.id], [Status.CREATED, init.pid, bundle, 'life']);
    assert.equal((await calls.start('life')).pid, init.pid);
    assert.ok(init.ran);
    assert.equal((await calls.state('life')).status, Status.RUNNING);
    await calls.pause('life');
    assert.equal((await calls.state('life')).status, Status.PAUSED);
    await calls.resume('life');
    assert.equal((await calls.state('life')).status, Status.RUNNING);
    assert.deepEqual(init.signals, [19, 18]);

    const waiting = calls.wait('life');
    await calls.kill('life', 15);
    assert.equal((await waiting).exitStatus, 143);
    state = await calls.state('life');
    assert.deepEqual([state.status, state.exitStatus], [Status.STOPPED, 143]);
    assert.ok(state.exitedAt);

    const deleted = await calls.delete('life');
    assert.deepEqual([deleted.pid, deleted.exitStatus], [init.pid, 143]);
    assert.equal(service.containers.size, 0);
    assert.equal(service.busy, false, 'outside v2 Delete waits for the cleanup');
    assert.ok(!fs.existsSync(path.join(bundle, PID_FILE)));
    assert.ok(fs.existsSync(path.join(bundle, DELETE_RESPONSE_FILE)), 'the front end answers delete from it');

    assert.deepEqual(events.topics(), [
      '/tasks/create',
      '/tasks/start',
      '/tasks/paused',
      '/tasks/resumed',
      '/tasks/exit',
      '/tasks/delete',
    ]);
    const [created, , , , exit, gone] = events.published;
    assert.deepEqual([created.event.containerId, created.event.pid, created.event.bundle], ['life', init.pid, bundle]);
    assert.deepEqual([exit.event.id, exit.event.pid, exit.event.exitStatus], ['life', init.pid, 143]);
    assert.deepEqual([gone.event.containerId, gone.event.exitStatus], ['life', 143]);
  });

  test('wrong-state calls answer FailedPrecondition, NotFound or InvalidArgument and change nothing', async () => {
    const { calls, engine } = await withContainer('st');
    await rejectsWith(calls.pause('st'), ...PRECONDITION, 'cannot pause a created process');
    await rejectsWith(calls.resume('st'), ...PRECONDITION, 'cannot resume a created process');
    await calls.start('st');
    await rejectsWith(calls.start('st'), ...PRECONDITION, 'cannot start a running process');
    await rejectsWith(calls.resume('st'), ...PRECONDITION, 'cannot resume a running process');
    await rejectsWith(calls.delete('st'), ...PRECONDITION, 'cannot delete a running process');
    await calls.pause('st');
    await rejectsWith(calls.pause('st'), ...PRECONDITION, 'cannot pause a paused process');
    await rejectsWith(calls.delete('st'), ...PRECONDITION, 'cannot delete a paused process');
    assert.equal((await calls.state('st')).status, Status.PAUSED);
    await rejectsWith(calls.kill('st', 99), ...INVALID, 'invalid signal 99');
    // A signal other than SIGKILL reaches a paused process by continuing it.
    await calls.kill('st', 15);
    assert.deepEqual(engine.instance('st').signals, [19, 15, 18]);
    assert.equal((await calls.wait('st')).exitStatus, 143);
    await rejectsWith(calls.start('st'), ...PRECONDITION, 'cannot start a stopped process');
    await rejectsWith(calls.pause('st'), ...PRECONDITION, 'cannot pause a stopped process');
    await rejectsWith(calls.kill('st', 9), ...NOT_FOUND, 'process already finished');
    await rejectsWith(calls.kill('st', 9, { all: true }), ...NOT_FOUND, 'process already finished');
    assert.equal((await calls.delete('st')).exitStatus, 143);
    await rejectsWith(calls.state('st'), ...NOT_FOUND, 'container st not found');
    await rejectsWith(calls.delete('st'), ...NOT_FOUND, 'container st not found');
  });

  test('unsupported calls: checkpoint, restore, resize, terminals', async () => {
    const { calls, dir } = await withContainer('un');
    await rejectsWith(
      calls.checkpoint('un'),
      'not-implemented',
      Code.Unimplemented,
      /^container un: checkpoint is not/,
    );
    await rejectsWith(calls.resizePty('un'), ...PRECONDITION, /^container un: the process has no terminal to resize/);
    const bundle = makeBundle(dir, 'other');
    await rejectsWith(
      calls.create('restore', bundle, { checkpoint: '/cp' }),
      'not-implemented',
      Code.Unimplemented,
      'container restore: restoring a checkpoint is not supported for Wasm instances',
    );
    await rejectsWith(
      calls.create('tty', bundle, { terminal: true }),
      ...INVALID,
      'container tty: terminals are not supported (run without -t/--tty)',
    );
  });

  test('unknown container and exec ids answer NotFound on every call', async () => {
    const { calls } = await withContainer('known');
    const answers = [
      calls.start('nope'),
      calls.state('nope'),
      calls.wait('nope'),
      calls.kill('nope', 9),
      calls.delete('nope'),
      calls.pause('nope'),
      calls.resume('nope'),
      calls.pids('nope'),
      calls.closeIO('nope'),
      calls.resizePty('nope'),
      calls.update('nope', {}),
      calls.stats('nope'),
      calls.checkpoint('nope'),
      calls.exec('nope', 'e1'),
    ];
    for (const answer of answers) await rejectsWith(answer, ...NOT_FOUND, 'container nope not found');
    const missing = 'exec ghost not found in container known';
    await rejectsWith(calls.start('known', 'ghost'), ...NOT_FOUND, missing);
    await rejectsWith(calls.state('known', 'ghost'), ...NOT_FOUND, missing);
    await rejectsWith(calls.kill('known', 9, { execId: 'ghost' }), ...NOT_FOUND, missing);
    await rejectsWith(calls.delete('known', 'ghost'), ...NOT_FOUND, missing);
    // Connect answers for any id: containerd asks before it knows what runs here.
    const connect = await calls.connect('nope');
    assert.deepEqual([connect.shimPid, connect.taskPid, connect.version], [process.pid, 0, VERSION]);
  });

  test('a second Create of an id, done or under way, answers AlreadyExists; bad ids and bundles InvalidArgument', async () => {
    const { calls, service, engine, dir, bundle } = await withContainer('twice');
    await rejectsWith(
      calls.create('twice', bundle),
      'already-exists',
      Code.AlreadyExists,
      'container twice already exists',
    );
    const release = engine.holdPrepares();
    const first = calls.create('racing', makeBundle(dir, 'racing'));
    await settle();
    assert.equal(service.busy, true);
    await rejectsWith(calls.create('racing', bundle), 'already-exists', Code.AlreadyExists);
    release();
    assert.equal((await first).pid, engine.instance('racing').pid);
    assert.equal(service.busy, false);

    await rejectsWith(calls.create('../x', bundle), ...INVALID, /^invalid container id "\.\.\/x": must match/);
    await rejectsWith(calls.create('x'.repeat(77), bundle), ...INVALID, /at most 76 characters$/);
    await rejectsWith(calls.create('nobundle', ''), ...INVALID, 'container nobundle: bundle path is required');
  });
});

describe('Task service exit statuses', () => {
  test('an exit before Wait, State or Delete is kept for all of them', async () => {
    const { calls, engine, events } = await withContainer('early');
    await calls.start('early');
    engine.instance('early').exit(3);
    await settle();
    assert.equal(events.topics().at(-1), '/tasks/exit');
    const state = await calls.state('early');
    assert.deepEqual([state.status, state.exitStatus], [Status.STOPPED, 3]);
    assert.equal((await calls.wait('early')).exitStatus, 3);
    assert.equal((await calls.wait('early')).exitStatus, 3, 'a second Wait too');
    await rejectsWith(calls.kill('early', 15), ...NOT_FOUND);
    assert.equal((await calls.delete('early')).exitStatus, 3);
    assert.deepEqual(events.published.at(-1)?.event.exitStatus, 3);
  });

  test('a process that vanished before its exit is reported answers a signal with NotFound', async () => {
    const { calls, engine } = await withContainer('gone');
    await calls.start('gone');
    engine.instance('gone').vanish();
    await rejectsWith(calls.kill('gone', 15), ...NOT_FOUND, 'process already finished');
    engine.instance('gone').exit(0);
    assert.equal((await calls.wait('gone')).exitStatus, 0);
  });

  test('Delete of a running process is refused; after the kill it gets the status', async () => {
    const { calls } = await withContainer('busy');
    await calls.start('busy');
    await rejectsWith(calls.delete('busy'), ...PRECONDITION);
    await calls.kill('busy', 9);
    assert.equal((await calls.delete('busy')).exitStatus, 137);
  });

  test('Delete of a never started container kills it first, as runc does', async () => {
    const { calls, engine, events } = await withContainer('unstarted');
    assert.equal((await calls.delete('unstarted')).exitStatus, 137);
    assert.deepEqual(engine.instance('unstarted').signals, [9]);
    assert.equal(engine.instance('unstarted').ran, false);
    assert.deepEqual(events.topics(), ['/tasks/create', '/tasks/exit', '/tasks/delete']);
  });

  test('a module that exits by itself while paused still reports its status', async () => {
    const { calls, engine } = await withContainer('pexit');
    await calls.start('pexit');
    await calls.pause('pexit');
    engine.instance('pexit').exit(0);
    assert.equal((await calls.wait('pexit')).exitStatus, 0);
    await rejectsWith(calls.resume('pexit'), ...PRECONDITION, 'cannot resume a stopped process');
  });
});

describe('Task service execs', () => {
  test('exec, start, exit, wait, delete: its own status and events, the container untouched', async () => {
    const { calls, service, engine, events } = await withContainer('host');
    await calls.start('host');
    await calls.exec('host', 'e1', ['/app.wasm', 'probe']);
    const exec = engine.instance('host', 'e1');
    assert.deepEqual(exec.spec.args, ['/app.wasm', 'probe']);
    let state = await calls.state('host', 'e1');
    assert.deepEqual([state.id, state.execId, state.status, state.pid], ['e1', 'e1', Status.CREATED, exec.pid]);
    assert.equal((await calls.start('host', 'e1')).pid, exec.pid);
    const pids = (await calls.pids('host')).processes?.map((p) => p.pid);
    assert.deepEqual(pids, [engine.instance('host').pid, exec.pid]);
    exec.exit(7);
    assert.equal((await calls.wait('host', 'e1')).exitStatus, 7);
    state = await calls.state('host', 'e1');
    assert.deepEqual([state.status, state.exitStatus], [Status.STOPPED, 7]);
    assert.equal((await calls.delete('host', 'e1')).exitStatus, 7);
    await rejectsWith(calls.state('host', 'e1'), ...NOT_FOUND, 'exec e1 not found in container host');
    assert.equal((await calls.state('host')).status, Status.RUNNING);
    assert.equal(service.containers.size, 1);
    assert.deepEqual(events.topics(), [
      '/tasks/create',
      '/tasks/start',
      '/tasks/exec-added',
      '/tasks/exec-started',
      '/tasks/exit',
    ]);
    const exit = events.published.at(-1)!.event;
    assert.deepEqual([exit.containerId, exit.id, exit.pid, exit.exitStatus], ['host', 'e1', exec.pid, 7]);
  });

  test('exec ids: reuse while present answers AlreadyExists, after its Delete it is free', async () => {
    const { calls } = await withContainer('reuse');
    await calls.start('reuse');
    await calls.exec('reuse', 'e');
    await rejectsWith(
      calls.exec('reuse', 'e'),
      'already-exists',
      Code.AlreadyExists,
      'exec e in container reuse: exec id already exists',
    );
    assert.equal((await calls.delete('reuse', 'e')).exitStatus, 137, 'never started: killed first');
    await calls.exec('reuse', 'e');
    await calls.start('reuse', 'e');
  });

  test('bad exec ids and specs answer InvalidArgument naming the exec', async () => {
    const { calls } = await withContainer('bad');
    await rejectsWith(calls.exec('bad', 'a/b'), ...INVALID, /^invalid exec id "a\/b"/);
    await rejectsWith(
      calls.exec('bad', 'typed', undefined, 'types.example.com/Other'),
      ...INVALID,
      /^exec typed in container bad: process spec has type types.example.com\/Other, expected /,
    );
    await rejectsWith(
      calls.exec('bad', 'noargs', []),
      ...INVALID,
      /^exec noargs in container bad: .*process.args must be a non-empty list of strings$/,
    );
    await rejectsWith(
      calls.exec('bad', 'missing', ['/nope.wasm']),
      ...INVALID,
      /^exec missing in container bad: module \/nope.wasm not found in the container's rootfs/,
    );
  });

  test("init's exit takes its execs with it, and exec into a stopped container is refused", async () => {
    const { calls, engine, events } = await withContainer('group');
    await calls.start('group');
    await calls.exec('group', 'x');
    await calls.start('group', 'x');
    engine.instance('group').exit(0);
    assert.equal((await calls.wait('group', 'x')).exitStatus, 137);
    assert.deepEqual(
      events.published.slice(-2).map((p) => [p.topic, p.event.id]),
      [
        ['/tasks/exit', 'group'],
        ['/tasks/exit', 'x'],
      ],
    );
    await rejectsWith(
      calls.exec('group', 'late'),
      ...PRECONDITION,
      'exec late in container group: container is not running',
    );
  });

  test('pause, resume and kill --all reach every live process', async () => {
    const { calls, engine } = await withContainer('all');
    await calls.start('all');
    await calls.exec('all', 'x');
    await calls.start('all', 'x');
    await calls.pause('all');
    await calls.resume('all');
    await calls.kill('all', 15, { all: true });
    assert.deepEqual(engine.instance('all').signals, [19, 18, 15]);
    assert.deepEqual(engine.instance('all', 'x').signals, [19, 18, 15]);
    assert.equal((await calls.wait('all', 'x')).exitStatus, 143);
    assert.deepEqual((await calls.pids('all')).processes, []);
  });
});

describe('Task service I/O, update, stats and shutdown', () => {
  test('CloseIO closes stdin of the named process only', async () => {
    const { calls, engine } = await withContainer('io');
    await calls.exec('io', 'x');
    await calls.closeIO('io', 'x');
    assert.deepEqual([engine.instance('io').stdinClosed, engine.instance('io', 'x').stdinClosed], [false, true]);
  });

  test('Update merges annotations; resources of another type or not JSON answer InvalidArgument; without a cgroup a warning', async () => {
    const { calls, service, log } = await withContainer('upd');
    await calls.update('upd', { team: 'wasm' });
    assert.equal(service.containers.get('upd')?.annotations.team, 'wasm');
    await rejectsWith(calls.update('upd', {}, '{nope'), ...INVALID, /^container upd: .*not valid JSON/);
    await rejectsWith(
      calls.update('upd', {}, '{}', 'x/LinuxResources'),
      ...INVALID,
      /^container upd: resources have type x\/LinuxResources, expected types\.containerd\.io\//,
    );
    await calls.update('upd', {}, '{"memory":{"limit":1048576}}');
    assert.ok(log.some((l) => l.level === 'warn' && /no cgroup/.test(l.msg) && l.fields?.id === 'upd'));
  });

  test("Stats without a cgroup sums the live processes' own usage", async () => {
    const { calls, engine } = await withContainer('stats');
    await calls.exec('stats', 'x');
    engine.instance('stats', 'x').usageValue = { rssBytes: 1000, userNanos: 5, kernelNanos: 7 };
    const { stats } = await calls.stats('stats');
    const metrics = stats && anyUnpack(create(AnySchema, stats), MetricsSchema);
    assert.ok(metrics);
    assert.equal(metrics.pids?.current, 2n);
    assert.equal(metrics.memory?.rss, 4096n + 1000n);
    assert.equal(metrics.cpu?.usage?.user, 2_000_000n + 5n);
    assert.equal(metrics.cpu?.usage?.kernel, 1_000_000n + 7n);
  });

  test('Shutdown lets the socket go only once no container is left, after the v2 Delete cleanup', async () => {
    const { calls, service, shutdowns, bundle } = await withContainer('bye');
    await calls.shutdown(false);
    await settle();
    assert.deepEqual(shutdowns, [], 'a container is still here');
    await calls.delete('bye', '', v2Call('Delete'));
    await calls.shutdown(true);
    assert.ok(fs.existsSync(path.join(bundle, DELETE_RESPONSE_FILE)), 'cleanup done before Shutdown answers');
    assert.equal(service.busy, false);
    await settle();
    assert.deepEqual(shutdowns, [true]);
  });
});
