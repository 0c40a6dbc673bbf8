// A rootfs with symlinks planted in it that point out of it, for the sandbox
// tests of modules (test/hostile/sandbox.test.ts) and components
// (test/component/component.test.ts), run with `ctr run --rootfs`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * `module` as /probe.wasm plus, inside: /d/sub/inside.txt, /d/ok -> sub,
 * /absin -> /d/sub, a world-writable /scratch; pointing out: /abs ->
 * <secretDir>, /abs-file -> <secretDir>/secret.txt, /etc-link -> /etc, /d/rel
 * and /d/rel-file climbing out with "..". <secretDir>/secret.txt also exists
 * inside the rootfs ("rerooted"), so a link that resolves inside reads that
 * instead of the host's.
 */
export function makePlantedRootfs(root: string, module: string, secretDir: string): string {
  fs.mkdirSync(path.join(root, 'd', 'sub'), { recursive: true });
  fs.mkdirSync(path.join(root, 'scratch'));
  fs.chmodSync(path.join(root, 'scratch'), 0o777);
  fs.copyFileSync(module, path.join(root, 'probe.wasm'));
  fs.writeFileSync(path.join(root, 'd', 'sub', 'inside.txt'), 'inside\n');
  fs.mkdirSync(path.join(root, secretDir), { recursive: true });
  fs.writeFileSync(path.join(root, secretDir, 'secret.txt'), 'rerooted inside\n');
  const up = '../'.repeat(12);
  fs.symlinkSync(secretDir, path.join(root, 'abs'));
  fs.symlinkSync(path.join(secretDir, 'secret.txt'), path.join(root, 'abs-file'));
  fs.symlinkSync('/etc', path.join(root, 'etc-link'));
  fs.symlinkSync(up + secretDir.slice(1), path.join(root, 'd', 'rel'));
  fs.symlinkSync(up + secretDir.slice(1) + '/secret.txt', path.join(root, 'd', 'rel-file'));
  fs.symlinkSync('sub', path.join(root, 'd', 'ok'));
  fs.symlinkSync('/d/sub', path.join(root, 'absin'));
  return root;
}

/** Paths through the planted links that must not reach the host, whatever the runtime. */
export const PLANTED_ESCAPES = [
  '/abs/secret.txt',
  '/etc-link/hostname',
  '/etc-link/passwd',
  '/d/rel/secret.txt',
  'd/rel/secret.txt',
];
/** Links in the last component: refused, or resolved inside the rootfs. */
export const PLANTED_LAST_LINKS = ['/abs-file', '/d/rel-file'];
/** Paths through links that stay inside. */
export const PLANTED_INSIDE = ['/d/ok/inside.txt', '/d/ok/../sub/inside.txt'];
/** An absolute link in an earlier component that points inside. */
export const PLANTED_ABSOLUTE_INSIDE = '/absin/inside.txt';

/** probe.wasm's arguments to try every planted path. */
export const PLANTED_OPEN_ARGS = [
  '/probe.wasm',
  'open',
  ...PLANTED_ESCAPES,
  ...PLANTED_LAST_LINKS,
  ...PLANTED_INSIDE,
  PLANTED_ABSOLUTE_INSIDE,
];

/** probe's `open` line for path p ("open <p>: ok <text>" or "open <p>: fail <error>"). */
export function openLine(stdout: string, p: string): string {
  return stdout.split('\n').find((l) => l.startsWith(`open ${p}: `)) ?? `(no line for ${p})`;
}

/** A temp dir holding `rootfs/` with links planted in it and `host-secret/` beside it, for confinement unit tests. */
export interface LinkedRootfs {
  /** Remove it all with fs.rmSync(tmp, { recursive: true }). */
  tmp: string;
  root: string;
  /** The host directory the outward links point at; it holds secret.txt. */
  outside: string;
}

/**
 * Inside: /d/sub/inside.txt, /d/ok -> sub, /absin -> /d/sub. Pointing out:
 * /abs -> <outside>, /d/rel climbing out with "..", /file-link ->
 * <outside>/secret.txt. Nothing rerooted: a link out finds nothing inside.
 */
export function makeLinkedRootfs(prefix: string): LinkedRootfs {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const root = path.join(tmp, 'rootfs');
  const outside = path.join(tmp, 'host-secret');
  fs.mkdirSync(path.join(root, 'd/sub'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'host secret\n');
  fs.writeFileSync(path.join(root, 'd/sub/inside.txt'), 'inside\n');
  fs.symlinkSync(outside, path.join(root, 'abs')); // absolute link to a host dir
  fs.symlinkSync('../../../../../../../../' + outside.slice(1), path.join(root, 'd/rel')); // relative, climbing out
  fs.symlinkSync('sub', path.join(root, 'd/ok')); // relative, staying inside
  fs.symlinkSync('/d/sub', path.join(root, 'absin')); // absolute, meant inside the image
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'file-link')); // last component
  return { tmp, root, outside };
}
