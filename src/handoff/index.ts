// The handoff module's public API: how a container's socket reaches a
// long-lived daemon. The sh front end (bin/containerd-shim-wasmts-v1), Node's
// start (src/frontend) and the daemon (src/daemon) all follow it; the protocol
// itself is described at the top of handoff.ts.

// containerd's side: the socket path a `start` prints, and binding it
export {
  bindShimSocket,
  canConnect,
  groupingFor,
  probeSocket,
  socketPathFor,
  SOCKET_DIR,
  type SocketState,
} from './socket-address.js';

// the daemon's key, state dir, lock, ready sockets and control socket
export {
  DAEMON_ACTION,
  STATE_ROOT,
  daemonPaths,
  isDaemonDirName,
  isReadySocketName,
  isShimDaemon,
  keyFrom,
  lockHolder,
  readySocketPath,
  requestHandoff,
  serveHandoffs,
  takeLock,
  type DaemonPaths,
  type Handoff,
  type HandoffReply,
} from './handoff.js';
