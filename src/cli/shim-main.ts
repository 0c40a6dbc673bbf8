// The Node side of containerd-shim-wasmts-v1, which the sh front end execs for
// what it does not answer itself. `start` and `delete` stay in this small
// bundle; the daemon (`serve`) is a separate bundle loaded only when needed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseStartInput, startReply } from '../frontend/bootstrap.js';
import { FlagError, parseShimFlags } from '../frontend/flags.js';
import { DAEMON_ACTION } from '../handoff/index.js';
import { deleteShim, startShim } from '../frontend/manager.js';
import { VERSION, REVISION } from '../version.js';

const here = typeof __dirname === 'string' ? __dirname : path.dirname(new URL(import.meta.url).pathname);

function readStdin(): Uint8Array {
  try {
    if (fs.fstatSync(0).isCharacterDevice()) return new Uint8Array(); // a terminal: nothing to read
    return fs.readFileSync(0);
  } catch {
    return new Uint8Array();
  }
}

function fail(message: string): never {
  // containerd shows start's combined output as the error text: one line.
  process.stderr.write(`containerd-shim-wasmts-v1: ${message.replace(/\s+/g, ' ').trim()}\n`);
  process.exit(1);
}

async function main(argv: string[]): Promise<void> {
  let flags;
  try {
    flags = parseShimFlags(argv);
  } catch (err) {
    if (err instanceof FlagError) fail(err.message);
    throw err;
  }
  if (flags.version) {
    process.stdout.write(
      `containerd-shim-wasmts-v1:\n  Version: ${VERSION}\n  Revision: ${REVISION}\n  Go version: node ${process.version}\n`,
    );
    return;
  }
  switch (flags.action) {
    case 'start': {
      const input = parseStartInput(readStdin());
      const address = await startShim(flags, {
        cwd: process.cwd(),
        input,
        daemonEntry: path.join(here, 'shim.cjs'),
        env: process.env,
      });
      process.stdout.write(startReply(input, process.env, address));
      // Exit without closing the listening handle: libuv would unlink the socket.
      return process.exit(0);
    }
    case 'delete': {
      const response = await deleteShim(flags, process.cwd());
      process.stdout.write(response);
      return;
    }
    case DAEMON_ACTION: {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the daemon is a separate CommonJS bundle, loaded by its run-time path only when needed
      const { runDaemon } = require(path.join(here, 'daemon.cjs')) as typeof import('../daemon/daemon.js');
      await runDaemon(flags);
      return;
    }
    default:
      fail(
        flags.action === ''
          ? 'no action given (expected start, delete or -v)'
          : `unknown action "${flags.action}" (expected start, delete or -v)`,
      );
  }
}

main(process.argv.slice(2)).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
