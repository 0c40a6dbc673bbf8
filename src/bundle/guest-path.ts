// Resolves a path inside a container's rootfs the way the container would see
// it, symlinks included, without ever looking outside the rootfs. Shared by
// the shim (finding the entrypoint) and the child (confining WASI paths).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpecError } from './spec.js';

const MAX_LINKS = 40;

export interface ResolveOptions {
  /** Absolute symlink targets: re-rooted at the rootfs, or refused (null). */
  absoluteLinks: 'reroot' | 'refuse';
  /** Whether a symlink in the last component is followed too. */
  followLast: boolean;
}

/**
 * The guest path `rel` names when looked up from guest directory `base`, or
 * null when the lookup would leave the rootfs (".." above "/", or a refused
 * absolute link). Components that do not exist are kept as they are.
 */
export function resolveGuestPath(rootfs: string, base: string, rel: string, opts: ResolveOptions): string | null {
  const queue = rel.split('/');
  if (rel.startsWith('/')) base = '/';
  let current = base;
  let links = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (current === '/') {
        if (opts.absoluteLinks === 'refuse') return null;
        continue; // like the kernel at "/": ".." stays put
      }
      current = path.posix.dirname(current);
      continue;
    }
    const next = path.posix.join(current, part);
    if (queue.every((p) => p === '' || p === '.') && !opts.followLast) return next;
    let target: string;
    try {
      target = fs.readlinkSync(path.join(rootfs, next));
    } catch {
      current = next; // not a link, or missing: nothing to follow
      continue;
    }
    if (++links > MAX_LINKS) return null;
    if (target.startsWith('/')) {
      if (opts.absoluteLinks === 'refuse') return null;
      current = '/';
    }
    queue.unshift(...target.split('/'));
  }
  return current;
}

/** Host path for a guest path, with symlinks resolved as if the rootfs were `/`. */
export function inRootfs(rootfs: string, guestPath: string): string {
  const guest = resolveGuestPath(rootfs, '/', guestPath, { absoluteLinks: 'reroot', followLast: true });
  if (guest === null) throw new SpecError(`too many symbolic links resolving ${guestPath}`);
  return path.join(rootfs, guest);
}
