// node:wasi resolves a symlink in the last path component inside the preopen,
// but lets the kernel follow symlinks in the components before it, so a link
// like /abs -> /etc in an image opens the host's /etc/passwd as /abs/passwd.
// These wrappers check every path a module hands to WASI first: a lookup that
// would pass through an absolute symlink or climb above the rootfs fails with
// ENOTCAPABLE before node:wasi sees it.

import { resolveGuestPath } from '../bundle/index.js';

const ERRNO_NOTCAPABLE = 76;
const ERRNO_SUCCESS = 0;
const LOOKUP_SYMLINK_FOLLOW = 1;

type WasiFn = (...args: (number | bigint)[]) => number;
type WasiImports = Record<string, WasiFn>;

export interface Confinement {
  /** Called once the instance exists: WASI reads paths out of its memory. */
  setMemory(memory: WebAssembly.Memory): void;
}

/**
 * Wraps the path-taking preview1 imports. `preopens` maps guest directories
 * to the fds node:wasi gives them (3, 4, … in insertion order); directories
 * the module opens later are tracked through path_open/fd_close/fd_renumber.
 */
export function confinePaths(imports: WasiImports, rootfs: string, preopenGuests: string[]): Confinement {
  let memory: WebAssembly.Memory | undefined;
  const dirs = new Map<number, string>();
  preopenGuests.forEach((guest, i) => dirs.set(3 + i, guest));
  const decoder = new TextDecoder();

  const readPath = (ptr: number, len: number): string =>
    memory ? decoder.decode(new Uint8Array(memory.buffer, ptr, len)) : '';

  /**
   * The guest path of (fd, rel), or null when the lookup must be refused. An fd
   * that is not a directory we know of is refused too: every directory fd comes
   * from a preopen or from path_open, so an unknown one cannot be vouched for.
   */
  const check = (
    fd: number,
    ptr: number,
    len: number,
    followLast: boolean,
    absoluteLinks: 'refuse' | 'reroot' = 'refuse',
  ): string | null => {
    const base = dirs.get(fd);
    if (base === undefined) return null;
    return resolveGuestPath(rootfs, base, readPath(ptr, len), { absoluteLinks, followLast });
  };

  const wrap = (name: string, guard: (args: number[]) => boolean, after?: (args: number[], result: number) => void) => {
    const original = imports[name];
    if (typeof original !== 'function') return;
    imports[name] = (...args: (number | bigint)[]) => {
      const ints = args as number[];
      if (!guard(ints)) return ERRNO_NOTCAPABLE;
      const result = original(...args);
      after?.(ints, result);
      return result;
    };
  };
  const ok = (v: string | null) => v !== null;

  wrap(
    'path_open',
    ([fd, _dirflags, p, len]) => ok(check(fd, p, len, false)),
    (args, result) => {
      if (result !== ERRNO_SUCCESS || !memory) return;
      const [fd, dirflags, p, len] = args;
      // A followed symlink in the last component was re-rooted by node:wasi itself.
      const guest = check(fd, p, len, (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0, 'reroot');
      const opened = new DataView(memory.buffer).getUint32(args[8], true);
      if (guest) dirs.set(opened, guest);
    },
  );
  wrap(
    'fd_close',
    () => true,
    ([fd], result) => {
      if (result === ERRNO_SUCCESS) dirs.delete(fd);
    },
  );
  wrap(
    'fd_renumber',
    () => true,
    ([from, to], result) => {
      if (result !== ERRNO_SUCCESS) return;
      const guest = dirs.get(from);
      dirs.delete(from);
      if (guest !== undefined) dirs.set(to, guest);
      else dirs.delete(to);
    },
  );
  for (const name of ['path_create_directory', 'path_remove_directory', 'path_unlink_file']) {
    wrap(name, ([fd, p, len]) => ok(check(fd, p, len, false)));
  }
  for (const name of ['path_filestat_get', 'path_filestat_set_times']) {
    wrap(name, ([fd, , p, len]) => ok(check(fd, p, len, false)));
  }
  wrap('path_readlink', ([fd, p, len]) => ok(check(fd, p, len, false)));
  wrap('path_rename', ([fd, p, len, fd2, p2, len2]) => ok(check(fd, p, len, false)) && ok(check(fd2, p2, len2, false)));
  wrap('path_link', ([fd, , p, len, fd2, p2, len2]) => ok(check(fd, p, len, false)) && ok(check(fd2, p2, len2, false)));
  wrap('path_symlink', ([, , fd, p, len]) => ok(check(fd, p, len, false)));

  return {
    setMemory(m) {
      memory = m;
    },
  };
}
