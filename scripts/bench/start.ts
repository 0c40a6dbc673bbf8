// P6: the front end's `start` (claiming a ready socket of a running daemon)
// and `delete` (printing the DeleteResponse the daemon left), exec to exit,
// each against `node -e 0`, alternated so machine noise hits both.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import { DELETE_RESPONSE_FILE, encodeDeleteResponse } from '../../src/bundle/files.js';
import { ms, summarizePairs, type PairSummary } from './stats.js';
import { SHIM_BIN as SHIM, sleep } from '../../test/harness/index.js';

function timeRun(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): { ms: number; stdout: Buffer } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const elapsed = ms(process.hrtime.bigint() - t0);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return { ms: elapsed, stdout: r.stdout };
}

/** The environment a daemon was started with: a start with it has the daemon's key. */
export function environOf(pid: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const entry of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0 && !entry.startsWith('_WASMTS_KEY=')) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

export interface FrontEndFigures {
  start: PairSummary;
  delete: PairSummary;
  /** Starts that found no ready socket and fell back to Node (each would skew the figure). */
  fallbacks: number;
}

/** Tells the daemon the claimed socket is done with (as containerd's Shutdown would), and removes its file. */
async function release(address: string): Promise<void> {
  const conn = await TtrpcClient.connect(address);
  try {
    await createClient(Task, conn).shutdown({ id: 'p6' }, { timeoutMs: 5_000 });
  } finally {
    conn.close();
    fs.rmSync(address.replace('unix://', ''), { force: true });
  }
}

/**
 * Times the front end against the daemon `daemonPid` of containerd
 * `containerdAddress`. Each start claims one of the daemon's ready sockets;
 * the socket file is removed again (the daemon closes the unused socket).
 */
export async function measureFrontEnd(
  containerdAddress: string,
  daemonPid: number,
  pairs: number,
): Promise<FrontEndFigures> {
  const env = environOf(daemonPid);
  // -debug is part of the daemon's key, as containerd at debug level passes it
  const debug = fs.readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8').split('\0').includes('-debug') ? ['-debug'] : [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-bench-start-'));
  const starts: number[] = [];
  const deletes: number[] = [];
  const nodeForStart: number[] = [];
  const nodeForDelete: number[] = [];
  let fallbacks = 0;
  const response = encodeDeleteResponse(1234, 0, Date.now());
  try {
    for (let i = -2; i < pairs; i++) {
      const id = `p6-${process.pid}-${i + 2}`;
      const bundle = path.join(tmp, id);
      fs.mkdirSync(bundle);
      fs.writeFileSync(path.join(bundle, 'config.json'), '{"ociVersion":"1.0.2","process":{"args":["/x.wasm"]}}');
      const flags = [
        '-namespace',
        'bench',
        '-address',
        containerdAddress,
        '-publish-binary',
        '/usr/bin/containerd',
        '-id',
        id,
        ...debug,
      ];
      const n1 = timeRun(process.execPath, ['-e', '0'], bundle, env);
      const s = timeRun(SHIM, [...flags, 'start'], bundle, env);
      await release(s.stdout.toString());
      if (fs.existsSync(path.join(bundle, 'shim.pid'))) fallbacks++; // only Node's start writes it at start
      fs.writeFileSync(path.join(bundle, DELETE_RESPONSE_FILE), response);
      const d = timeRun(SHIM, [...flags, '-bundle', bundle, 'delete'], bundle, env);
      const n2 = timeRun(process.execPath, ['-e', '0'], bundle, env);
      if (!d.stdout.equals(Buffer.from(response)))
        throw new Error('delete printed something else than the DeleteResponse left for it');
      await sleep(50); // the daemon binds its next ready socket, as between containers
      if (i >= 0) {
        starts.push(s.ms);
        nodeForStart.push(n1.ms);
        deletes.push(d.ms);
        nodeForDelete.push(n2.ms);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { start: summarizePairs(starts, nodeForStart), delete: summarizePairs(deletes, nodeForDelete), fallbacks };
}
