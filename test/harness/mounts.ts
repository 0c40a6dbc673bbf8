// Mounts below a directory: listing them, removing them, and whether overlayfs
// works here at all.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mounts (from /proc/self/mountinfo) at `under` or below it. */
export function listMounts(under: string): MountInfo[] {
  const base = path.resolve(under).replace(/\/+$/, '');
  const out: MountInfo[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right = ''] = line.split(' - ');
    const mountPoint = unescapeMount(left.split(' ')[4] ?? '');
    const [fsType = '', source = '', options = ''] = right.split(' ');
    if (mountPoint === base || mountPoint.startsWith(base + '/')) {
      out.push({ mountPoint, fsType, source: unescapeMount(source), options });
    }
  }
  return out;
}

/** Unmount everything at or below dir, deepest first (lazy unmount as a last resort). */
export function unmountAll(dir: string): void {
  for (let round = 0; round < 5; round++) {
    const mounts = listMounts(dir).sort((a, b) => b.mountPoint.length - a.mountPoint.length);
    if (mounts.length === 0) return;
    for (const m of mounts) {
      const r = spawnSync('umount', [m.mountPoint], { stdio: 'ignore' });
      if (r.status !== 0) spawnSync('umount', ['-l', m.mountPoint], { stdio: 'ignore' });
    }
  }
}

let overlayProbe: boolean | undefined;

/** Can we mount overlayfs on the fs holding `dir`? (Fails e.g. on an overlay root in some sandboxes.) */
export function overlayWorks(dir: string): boolean {
  if (overlayProbe !== undefined) return overlayProbe;
  const t = mkdtempSync(path.join(dir, 'overlay-probe-'));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(path.join(t, d));
    writeFileSync(path.join(t, 'lower', 'f'), 'x');
    const r = spawnSync(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', `lowerdir=${t}/lower,upperdir=${t}/upper,workdir=${t}/work`, `${t}/merged`],
      { stdio: 'ignore' },
    );
    overlayProbe = r.status === 0 && existsSync(path.join(t, 'merged', 'f'));
  } catch {
    overlayProbe = false;
  } finally {
    unmountAll(t);
    rmSync(t, { recursive: true, force: true });
  }
  return overlayProbe;
}
