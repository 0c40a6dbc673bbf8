// Mounts a container's filesystem the way runc's shim does: the snapshot
// mounts from Create onto <bundle>/rootfs, then the spec's bind mounts inside
// it (so the `/` preopen covers them and a read-only bind really is read-only).
// Node has no mount(2), so util-linux does the work.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { inRootfs, recordMount, SpecError, type OciMount } from '../bundle/index.js';

const run = promisify(execFile);

export interface SnapshotMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

async function mount(args: string[]): Promise<void> {
  try {
    await run('mount', args);
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`mount ${args.join(' ')} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

export async function mountSnapshot(bundle: string, rootfs: string, mounts: SnapshotMount[]): Promise<void> {
  if (mounts.length === 0) return; // containerd prepared <bundle>/rootfs itself
  fs.mkdirSync(rootfs, { recursive: true });
  for (const m of mounts) {
    const target = m.target ? path.join(rootfs, m.target) : rootfs;
    const options = m.options.filter(Boolean);
    if (m.type === 'bind' || options.includes('bind') || options.includes('rbind')) {
      const flag = options.includes('rbind') ? '--rbind' : '--bind';
      await mount([flag, m.source, target]);
      recordMount(bundle, target);
      if (options.includes('ro')) await mount(['-o', 'remount,bind,ro', target]);
    } else {
      await mount(['-t', m.type, ...(options.length ? ['-o', options.join(',')] : []), m.source, target]);
      recordMount(bundle, target);
    }
  }
}

export async function bindRootfs(bundle: string, rootfs: string, point: string): Promise<void> {
  await mount(['--rbind', rootfs, point]);
  recordMount(bundle, point);
}

/** root.readonly: the rootfs (with the binds in it) becomes a read-only mount of itself. */
export async function makeReadOnly(bundle: string, rootfs: string): Promise<void> {
  await mount(['--rbind', rootfs, rootfs]);
  recordMount(bundle, rootfs);
  await mount(['-o', 'remount,bind,ro', rootfs]);
}

/** Bind mounts from the OCI spec; kernel file systems (proc, sysfs, tmpfs…) mean nothing to WASI and are skipped. */
export function bindMountsOf(mounts: OciMount[] | undefined): OciMount[] {
  return (mounts ?? []).filter(
    (m) => m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind'),
  );
}

export async function mountBinds(bundle: string, rootfs: string, mounts: OciMount[]): Promise<void> {
  for (const m of mounts) {
    if (!m.source || !m.destination?.startsWith('/')) {
      throw new SpecError(`bind mount ${JSON.stringify(m)} needs a source and an absolute destination`);
    }
    let isDir: boolean;
    try {
      isDir = fs.statSync(m.source).isDirectory();
    } catch {
      throw new SpecError(`bind mount source ${m.source} does not exist`);
    }
    const target = inRootfs(rootfs, m.destination);
    if (isDir) fs.mkdirSync(target, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      if (!fs.existsSync(target)) fs.writeFileSync(target, '');
    }
    const options = m.options ?? [];
    await mount([options.includes('rbind') ? '--rbind' : '--bind', m.source, target]);
    recordMount(bundle, target);
    if (options.includes('ro')) await mount(['-o', 'remount,bind,ro', target]);
  }
}
