// The Kubernetes path, driven the way a kubelet drives it: our own CRI client
// (runtime.v1 over gRPC) against a private containerd with its CRI plugin and
// the `wasmts` runtime handler. A host-network pod (no CNI) with two Wasm
// containers: one that fails, one that keeps running (logs, ExecSync, stats),
// then Stop/Remove of everything and a check that nothing is left behind.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  ContainerState,
  NamespaceMode,
  PodSandboxConfigSchema,
  PodSandboxState,
  type ContainerConfigSchema,
  type PodSandboxConfig,
} from '../../src/gen/cri/runtime/v1/api_pb.js';
import {
  busyDaemonProblems,
  listMounts,
  listProcesses,
  processAlive,
  socketPathFor,
  until,
  E2E_TEST_TIMEOUT as T,
} from '../harness/index.js';
import { isShimDaemon } from '../../src/handoff/handoff.js';
import { CRI_NAMESPACE, HANDLER, PAUSE_IMAGE, PROBE_IMAGE, RUNTIME_TYPE, startCriNode, type CriNode } from './setup.js';

/** One CRI log line: RFC 3339 nano timestamp, stream, P(artial)/F(ull) tag, content. */
const CRI_LOG_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$/;

let node: CriNode;
let podId = '';
let sandboxConfig: PodSandboxConfig;
/** Where the shim creates the containers' cgroups (cgroupfs driver, as a kubelet would pass). */
const cgroupParent = `/wasmts-cri-${randomBytes(4).toString('hex')}/pod-test`;
const ids = { failing: '', worker: '', hungry: '' };
/** Memory limit of the container that allocates without end. */
const MEMORY_LIMIT = 160 << 20;
const VOLUME_TEXT = 'from a host directory';
/** Task pids (the Wasm children) seen while the pod ran, for the leak check. */
const taskPids = new Set<number>();

before(
  async () => {
    node = await startCriNode();
  },
  { timeout: 120_000 },
);

after(async () => {
  await node?.teardown();
  removeCgroupParent();
});

/** A test body that, when it fails, prints containerd's log tail (the shim's log lines go there too). */
function withLog(body: () => Promise<void>) {
  return async () => {
    try {
      await body();
    } catch (err) {
      process.stderr.write(
        `\n--- containerd log (last 60 lines) ---\n${node?.c.log().split('\n').slice(-61).join('\n')}\n`,
      );
      throw err;
    }
  };
}

const rt = () => node.cri.runtime;

function logDirectory(): string {
  return path.join(node.c.tmp, 'pods', `default_wasm-pod_${sandboxConfig.metadata!.uid}`);
}

/** What some containers add to the common config: a volume, resources. */
interface ContainerExtras {
  mounts?: { containerPath: string; hostPath: string; readonly: boolean }[];
  linux?: { resources: { memoryLimitInBytes: bigint } };
}

function containerConfig(
  name: string,
  args: string[],
  extra: ContainerExtras = {},
): MessageInitShape<typeof ContainerConfigSchema> {
  fs.mkdirSync(path.join(logDirectory(), name), { recursive: true }); // the kubelet makes these
  return {
    ...extra,
    metadata: { name, attempt: 0 },
    image: { image: PROBE_IMAGE },
    command: ['/probe.wasm'],
    args,
    envs: [{ key: 'POD_ROLE', value: name }],
    labels: { 'io.kubernetes.container.name': name },
    annotations: { 'wasmts.test/container': name },
    logPath: `${name}/0.log`,
  };
}

function parseCriLog(file: string): { time: string; stream: string; tag: string; text: string }[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  return lines.map((line) => {
    const m = CRI_LOG_LINE.exec(line);
    assert.ok(m, `not a CRI log line: ${JSON.stringify(line)}`);
    assert.ok(!Number.isNaN(Date.parse(m[1])), `bad timestamp in ${JSON.stringify(line)}`);
    return { time: m[1], stream: m[2], tag: m[3], text: m[4] };
  });
}

async function ctrTasks(): Promise<Map<string, { pid: number; status: string }>> {
  const r = await node.c.ctrOk(['task', 'ls']);
  const out = new Map<string, { pid: number; status: string }>();
  for (const line of r.stdout.split('\n').slice(1)) {
    const [id, pid, status] = line.trim().split(/\s+/);
    if (!id || !status) continue;
    out.set(id, { pid: Number(pid), status });
    if (Number(pid) > 0) taskPids.add(Number(pid));
  }
  return out;
}

function cgroupDirs(relative: string): string[] {
  const root = '/sys/fs/cgroup';
  if (fs.existsSync(path.join(root, 'cgroup.controllers'))) return [path.join(root, relative)];
  return ['memory', 'cpu', 'cpuacct', 'pids'].map((c) => path.join(root, c, relative));
}

/**
 * What the kubelet does for its pod cgroups: remove them once the pod is gone
 * (after a failed run, also container cgroups the shim did not get to remove;
 * rmdir only succeeds on a cgroup without processes).
 */
function removeCgroupParent(): void {
  for (const dir of cgroupDirs(cgroupParent)) {
    for (const child of safeList(dir)) {
      try {
        fs.rmdirSync(path.join(dir, child));
      } catch {
        /* a control file, or a cgroup still in use */
      }
    }
  }
  for (const rel of [cgroupParent, path.dirname(cgroupParent)]) {
    for (const dir of cgroupDirs(rel)) {
      try {
        fs.rmdirSync(dir);
      } catch {
        /* absent */
      }
    }
  }
}

test(
  'the CRI plugin answers runtime.v1 and sees the locally imported images',
  T,
  withLog(async () => {
    const v = await rt().version({ version: 'v1' });
    assert.equal(v.runtimeName, 'containerd');
    assert.equal(v.runtimeApiVersion, 'v1');
    for (const ref of [PROBE_IMAGE, PAUSE_IMAGE]) {
      const s = await node.cri.image.imageStatus({ image: { image: ref } });
      assert.ok(s.image, `${ref} is not visible to CRI`);
      assert.ok(s.image.repoTags.includes(ref), `${ref}: repo tags ${s.image.repoTags.join(', ')}`);
      assert.match(s.image.id, /^sha256:[0-9a-f]{64}$/);
    }
  }),
);

test(
  'RunPodSandbox: a host-network pod with the wasmts handler',
  T,
  withLog(async () => {
    sandboxConfig = create(PodSandboxConfigSchema, {
      metadata: { name: 'wasm-pod', uid: randomUUID(), namespace: 'default', attempt: 0 },
      labels: { app: 'wasm-pod' },
      annotations: { 'wasmts.test/pod': 'yes' },
      linux: {
        cgroupParent,
        // what a kubelet sends for hostNetwork: true (pid per container, ipc per pod)
        securityContext: {
          namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
        },
      },
    });
    sandboxConfig.logDirectory = logDirectory();
    fs.mkdirSync(sandboxConfig.logDirectory, { recursive: true });
    const r = await rt().runPodSandbox({ config: sandboxConfig, runtimeHandler: HANDLER });
    podId = r.podSandboxId;
    assert.match(podId, /^[0-9a-f]{64}$/);

    const st = await rt().podSandboxStatus({ podSandboxId: podId });
    assert.equal(st.status?.state, PodSandboxState.SANDBOX_READY);
    assert.equal(st.status?.runtimeHandler, HANDLER);
    assert.equal(st.status?.metadata?.name, 'wasm-pod');
    assert.equal(st.status?.annotations['wasmts.test/pod'], 'yes');

    // The sandbox runs under our shim: its container's runtime, and its task served on the pod's socket.
    const info = await node.c.ctrOk(['container', 'info', podId]);
    assert.equal((JSON.parse(info.stdout) as { Runtime: { Name: string } }).Runtime.Name, RUNTIME_TYPE);
    assert.equal((await ctrTasks()).get(podId)?.status, 'RUNNING');
    assert.ok(fs.existsSync(socketPathFor(node.c.address, CRI_NAMESPACE, podId)), 'no shim socket for the pod');
  }),
);

test(
  'a container that exits non-zero: ContainerStatus and its CRI log',
  T,
  withLog(async () => {
    const config = containerConfig('failing', ['cat', '/no/such/file']);
    const created = await rt().createContainer({ podSandboxId: podId, config, sandboxConfig });
    ids.failing = created.containerId;
    const before = await rt().containerStatus({ containerId: ids.failing });
    assert.equal(before.status?.state, ContainerState.CONTAINER_CREATED);

    await rt().startContainer({ containerId: ids.failing });
    const status = await until('the failing container to exit', async () => {
      const s = (await rt().containerStatus({ containerId: ids.failing })).status;
      return s?.state === ContainerState.CONTAINER_EXITED ? s : undefined;
    });
    assert.equal(status.exitCode, 1);
    assert.equal(status.reason, 'Error');
    assert.ok(
      status.startedAt > 0n && status.finishedAt >= status.startedAt,
      `started ${status.startedAt}, finished ${status.finishedAt}`,
    );
    assert.equal(status.annotations['wasmts.test/container'], 'failing');
    assert.equal(status.logPath, path.join(logDirectory(), 'failing/0.log'));

    const log = parseCriLog(status.logPath);
    assert.deepEqual(
      log.map((l) => [l.stream, l.tag, l.text]),
      [['stderr', 'F', 'cat /no/such/file: No such file or directory']],
    );
  }),
);

test(
  'a running container: status, CRI log, ExecSync, ContainerStats',
  T,
  withLog(async () => {
    // a volume, as the kubelet passes one: a host directory, read-only here
    const volume = path.join(node.c.tmp, 'volume');
    fs.mkdirSync(volume, { recursive: true });
    fs.writeFileSync(path.join(volume, 'greeting.txt'), `${VOLUME_TEXT}\n`);
    const config = containerConfig('worker', ['daemon', '100'], {
      mounts: [{ containerPath: '/data', hostPath: volume, readonly: true }],
    });
    ids.worker = (await rt().createContainer({ podSandboxId: podId, config, sandboxConfig })).containerId;
    await rt().startContainer({ containerId: ids.worker });
    const status = (await rt().containerStatus({ containerId: ids.worker })).status!;
    assert.equal(status.state, ContainerState.CONTAINER_RUNNING);
    assert.equal(status.exitCode, 0);

    // the pod's containers are served by the sandbox's shim (one socket per pod)
    const tasks = await ctrTasks();
    assert.equal(tasks.get(ids.worker)?.status, 'RUNNING');
    const bundle = (id: string) => node.c.bundleDir(id, CRI_NAMESPACE);
    assert.equal(
      fs.readFileSync(path.join(bundle(ids.worker), 'address'), 'utf8'),
      fs.readFileSync(path.join(bundle(podId), 'address'), 'utf8'),
    );

    const ticks = await until(
      'three ticks in the CRI log',
      () => {
        const lines = parseCriLog(status.logPath);
        return lines.length >= 3 ? lines : undefined;
      },
      15_000,
    );
    assert.deepEqual(
      ticks.slice(0, 3).map((l) => [l.stream, l.tag, l.text]),
      [
        ['stdout', 'F', 'tick 0'],
        ['stdout', 'F', 'tick 1'],
        ['stdout', 'F', 'tick 2'],
      ],
    );

    const hello = await rt().execSync({
      containerId: ids.worker,
      cmd: ['/probe.wasm', 'args', 'hello', 'from exec'],
      timeout: 20n,
    });
    assert.equal(Buffer.from(hello.stdout).toString(), 'hello\nfrom exec\n');
    assert.equal(Buffer.from(hello.stderr).toString(), '');
    assert.equal(hello.exitCode, 0);

    const failing = await rt().execSync({ containerId: ids.worker, cmd: ['probe.wasm', 'exit', '7'], timeout: 20n }); // bare name: found on the image's PATH=/
    assert.equal(failing.exitCode, 7);

    const stderr = await rt().execSync({
      containerId: ids.worker,
      cmd: ['/probe.wasm', 'stderr', 'to stderr'],
      timeout: 20n,
    });
    assert.deepEqual(
      [Buffer.from(stderr.stdout).toString(), Buffer.from(stderr.stderr).toString(), stderr.exitCode],
      ['', 'to stderr\n', 0],
    );

    // CRI's bind mounts (/etc/hostname, /etc/hosts) reach the module; the container's env is the exec's
    const etc = await rt().execSync({
      containerId: ids.worker,
      cmd: ['/probe.wasm', 'cat', '/etc/hostname'],
      timeout: 20n,
    });
    assert.equal(Buffer.from(etc.stdout).toString().trim(), hostname());
    const env = await rt().execSync({ containerId: ids.worker, cmd: ['/probe.wasm', 'env'], timeout: 20n });
    assert.match(Buffer.from(env.stdout).toString(), /^POD_ROLE=worker$/m);
    // and so does the volume, read-only
    const data = await rt().execSync({
      containerId: ids.worker,
      cmd: ['/probe.wasm', 'cat', '/data/greeting.txt'],
      timeout: 20n,
    });
    assert.deepEqual([Buffer.from(data.stdout).toString(), data.exitCode], [`${VOLUME_TEXT}\n`, 0]);
    const write = await rt().execSync({
      containerId: ids.worker,
      cmd: ['/probe.wasm', 'write', '/data/new.txt', 'x'],
      timeout: 20n,
    });
    assert.equal(write.exitCode, 1);
    assert.match(Buffer.from(write.stderr).toString(), /^write \/data\/new\.txt: Read-only file system$/m);
    assert.equal(fs.existsSync(path.join(volume, 'new.txt')), false);

    // an exec past its timeout is killed, and the RPC says so
    const started = Date.now();
    await assert.rejects(
      rt().execSync({ containerId: ids.worker, cmd: ['/probe.wasm', 'sleep', '30'], timeout: 1n }),
      /timeout 1s exceeded/,
    );
    assert.ok(Date.now() - started < 15_000, `ExecSync timeout took ${Date.now() - started} ms`);

    const stats = (await rt().containerStats({ containerId: ids.worker })).stats!;
    assert.equal(stats.attributes?.id, ids.worker);
    assert.equal(stats.attributes?.metadata?.name, 'worker');
    assert.ok(
      (stats.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n,
      `cpu usage ${stats.cpu?.usageCoreNanoSeconds?.value}`,
    );
    assert.ok((stats.cpu?.timestamp ?? 0n) > 0n);
    assert.ok((stats.memory?.workingSetBytes?.value ?? 0n) > 0n, `working set ${stats.memory?.workingSetBytes?.value}`);
    assert.ok((stats.memory?.usageBytes?.value ?? 0n) > 0n);
    // the container's cgroup is under the pod's cgroup parent
    assert.ok(
      cgroupDirs(path.join(cgroupParent, ids.worker)).every((d) => fs.existsSync(d)),
      'no container cgroup under the pod cgroup parent',
    );
  }),
);

test(
  'a container past its memory limit (resources from the ContainerConfig) is OOMKilled',
  T,
  withLog(async () => {
    const config = containerConfig('hungry', ['oom', '4'], {
      linux: { resources: { memoryLimitInBytes: BigInt(MEMORY_LIMIT) } },
    });
    ids.hungry = (await rt().createContainer({ podSandboxId: podId, config, sandboxConfig })).containerId;
    // CreateContainer only records the container; the shim creates the task (and its cgroup) at StartContainer
    await rt().startContainer({ containerId: ids.hungry });
    const status = await until(
      'the hungry container to exit',
      async () => {
        const s = (await rt().containerStatus({ containerId: ids.hungry })).status;
        return s?.state === ContainerState.CONTAINER_EXITED ? s : undefined;
      },
      30_000,
    );
    // Without the limit the module would run out of its own 4 GiB address space, print its total and exit 3.
    assert.deepEqual([status.exitCode, status.reason], [137, 'OOMKilled']);
    assert.doesNotMatch(fs.readFileSync(status.logPath, 'utf8'), /oom: allocated/);
  }),
);

test(
  'StopContainer and RemoveContainer',
  T,
  withLog(async () => {
    await rt().stopContainer({ containerId: ids.worker, timeout: 10n });
    const stopped = (await rt().containerStatus({ containerId: ids.worker })).status!;
    assert.equal(stopped.state, ContainerState.CONTAINER_EXITED);
    assert.equal(stopped.exitCode, 143); // SIGTERM, the default stop signal
    assert.ok(parseCriLog(stopped.logPath).length >= 3);

    for (const id of [ids.failing, ids.worker, ids.hungry]) {
      await rt().removeContainer({ containerId: id });
      await assert.rejects(rt().containerStatus({ containerId: id }), /NOT_FOUND/);
    }
    const left = (await rt().listContainers({})).containers.map((c) => c.id);
    assert.deepEqual(left, []);
    const tasks = await ctrTasks();
    assert.deepEqual([...tasks.keys()], [podId], 'only the sandbox task remains');
  }),
);

test(
  'StopPodSandbox and RemovePodSandbox leave nothing behind',
  T,
  withLog(async () => {
    await rt().stopPodSandbox({ podSandboxId: podId });
    const st = await rt().podSandboxStatus({ podSandboxId: podId });
    assert.equal(st.status?.state, PodSandboxState.SANDBOX_NOTREADY);
    await rt().removePodSandbox({ podSandboxId: podId });
    assert.deepEqual((await rt().listPodSandbox({})).items, []);
    assert.deepEqual((await node.c.ctrOk(['task', 'ls', '-q'])).stdout.trim(), '');
    assert.deepEqual((await node.c.ctrOk(['container', 'ls', '-q'])).stdout.trim(), '');

    const problems: string[] = [];
    // start/delete exit at once; the long-lived daemon stays, holding nothing of the pod.
    const shimRe = new RegExp(`-address ${node.c.address.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`);
    const shims = () => listProcesses(shimRe).filter((p) => p.pid !== node.c.pid && !isShimDaemon(p.argv));
    const settled = await until(
      'the pod shim to let go',
      () => (shims().length === 0 && busyDaemonProblems(node.c.address, node.c.tmp).length === 0) || undefined,
      8_000,
    ).catch(() => false);
    if (!settled) {
      for (const p of shims()) problems.push(`shim still running: ${p.pid} ${p.cmdline}`);
      problems.push(...busyDaemonProblems(node.c.address, node.c.tmp));
    }
    // Wasm children: the tasks' pids, and any child holding a file of this containerd
    for (const pid of taskPids) if (processAlive(pid)) problems.push(`task process still running: ${pid}`);
    for (const p of listProcesses(/wasm-child/)) {
      const holdsOurs = safeList(`/proc/${p.pid}/fd`).some((fd) =>
        safeLink(`/proc/${p.pid}/fd/${fd}`).startsWith(node.c.tmp + '/'),
      );
      if (holdsOurs) problems.push(`wasm child holding files of this containerd: ${p.pid}`);
    }
    for (const m of listMounts(node.c.tmp)) problems.push(`mount left: ${m.mountPoint} (${m.fsType})`);
    // the pod's socket, and any a container would have had if it had not joined the pod's shim
    for (const id of [podId, ids.failing, ids.worker, ids.hungry]) {
      const socket = socketPathFor(node.c.address, CRI_NAMESPACE, id);
      if (fs.existsSync(socket)) problems.push(`shim socket left: ${socket}`);
    }
    const bundles = safeList(path.join(node.c.state, 'io.containerd.runtime.v2.task', CRI_NAMESPACE));
    if (bundles.length) problems.push(`bundle dirs left: ${bundles.join(', ')}`);
    for (const id of [podId, ids.failing, ids.worker, ids.hungry]) {
      for (const dir of cgroupDirs(path.join(cgroupParent, id)))
        if (fs.existsSync(dir)) problems.push(`cgroup left: ${dir}`);
    }
    assert.deepEqual(problems, []);
  }),
);

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function safeLink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '';
  }
}
