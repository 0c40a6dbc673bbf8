// Where one `ctr run --rm` spends its time, wasmts and runc alike: milestones
// read off containerd's debug log (and the shim's lines in it), as offsets
// from the moment ctr was started; medians over a few runs.
import * as fs from 'node:fs';
import { sleep, type Containerd } from '../../test/harness/index.js';
import { median } from './stats.js';

interface Milestone {
  name: string;
  /** Matches a line of containerd's log for the container `id`. */
  match(line: string, id: string): boolean;
}

const has =
  (...parts: string[]) =>
  (line: string, id: string) =>
    parts.every((p) => line.includes(p.replace('$id', id)));

const MILESTONES: Milestone[] = [
  { name: 'containerd has the container (snapshot mounted for start)', match: has('get snapshot mounts', 'key=$id') },
  { name: 'Create reaches the shim', match: has('msg="create"', 'id=$id') },
  { name: 'Create done (TaskCreate)', match: has('topic=/tasks/create') },
  { name: 'Start done (TaskStart)', match: has('topic=/tasks/start') },
  { name: 'the module exited (TaskExit)', match: has('topic=/tasks/exit') },
  { name: 'Delete done (TaskDelete)', match: has('topic=/tasks/delete') },
  { name: 'Shutdown closed the connection', match: has('shim disconnected', 'id=$id') },
  { name: 'containerd removes the snapshot (after `delete` exec)', match: has('remove snapshot', 'key=$id') },
];

function timeOf(line: string): number {
  const m = /time="([^"]+)"/.exec(line);
  return m ? Date.parse(m[1]) + Number(`0.${/\.(\d+)/.exec(m[1])?.[1]?.slice(3) ?? '0'}`) : NaN;
}

export interface TimelineRow {
  milestone: string;
  ms: number;
}

/** Runs `ctr run --rm` `runs` times and returns the median offset of each milestone, then ctr's exit. */
export async function timeline(
  ctd: Containerd,
  runArgs: (id: string) => string[],
  runs: number,
): Promise<TimelineRow[]> {
  const offsets = new Map<string, number[]>();
  const push = (name: string, v: number) => offsets.set(name, [...(offsets.get(name) ?? []), v]);
  for (let i = 0; i < runs; i++) {
    const id = `tl-${process.pid}-${Date.now()}-${i}`;
    const before = fs.statSync(ctd.logPath).size;
    const t0 = Date.now();
    const r = await ctd.ctr(runArgs(id), { timeoutMs: 60_000 });
    const end = Date.now();
    if (r.code !== 0) throw new Error(`timeline run failed: ${r.stderr}`);
    await sleep(300); // containerd's last lines
    const fd = fs.openSync(ctd.logPath, 'r');
    const buf = Buffer.alloc(fs.fstatSync(fd).size - before);
    fs.readSync(fd, buf, 0, buf.length, before);
    fs.closeSync(fd);
    const lines = buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l.includes(id) || /topic=\/tasks\//.test(l));
    for (const m of MILESTONES) {
      const line = lines.find((l) => m.match(l, id));
      if (line) push(m.name, timeOf(line) - t0);
    }
    push('ctr exits', end - t0);
  }
  return [...MILESTONES.map((m) => m.name), 'ctr exits']
    .filter((name) => offsets.has(name))
    .map((name) => ({ milestone: name, ms: median(offsets.get(name)!) }));
}
