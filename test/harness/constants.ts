// Where things are and what they are called, for every suite, the demo, the
// bench and the soak.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Holds containerd-shim-wasmts-v1: put first on containerd's PATH, `io.containerd.wasmts.v1` resolves to it. */
export const BIN_DIR = path.join(REPO, 'bin');
export const SHIM_NAME = 'containerd-shim-wasmts-v1';
export const SHIM_BIN = path.join(BIN_DIR, SHIM_NAME);
export const DIST = path.join(REPO, 'dist');
/** The C test modules (`make modules`). */
export const MODULES = path.join(REPO, 'build', 'modules');
export const RUNTIME = 'io.containerd.wasmts.v1';
export const PLATFORM = 'wasip1/wasm';
/** Where containerd's shim library puts shim sockets. */
export const SOCKET_DIR = '/run/containerd/s';
export const TASK_SERVICE = 'containerd.task.v2.Task';
export const TASK_SERVICE_V3 = 'containerd.task.v3.Task';
/** The CRI annotation that groups a pod's containers onto one shim socket. */
export const SANDBOX_ID_ANNOTATION = 'io.kubernetes.cri.sandbox-id';
export const DEFAULT_NAMESPACE = 'default';
/** The namespace containerd's CRI plugin (a kubelet) works in. */
export const CRI_NAMESPACE = 'k8s.io';
/** Every ctr call's default timeout; on expiry ctr is killed and the call rejects. */
export const CTR_TIMEOUT_MS = 30_000;
/** Test timeout of one end-to-end test, and of a suite's set-up (a containerd and an image import). */
export const E2E_TEST_TIMEOUT = { timeout: 60_000 };
export const SUITE_SETUP_TIMEOUT = { timeout: 120_000 };
