// The attribute names wasmts emits, from one pinned version of the OpenTelemetry
// semantic conventions (docs/tracing.md has the table). Copied here rather than
// imported, as @opentelemetry/semantic-conventions advises for its incubating
// names, and so that the always-loaded recorder imports nothing.

/** OpenTelemetry semantic conventions v1.45.0 (@opentelemetry/semantic-conventions 1.45.0). */
export const SEMCONV_VERSION = '1.45.0';
export const SCHEMA_URL = `https://opentelemetry.io/schemas/${SEMCONV_VERSION}`;

// RPC server spans (rpc.* as of v1.39+: system name, fully qualified method, string status code)
export const ATTR_RPC_SYSTEM_NAME = 'rpc.system.name';
export const ATTR_RPC_METHOD = 'rpc.method';
export const ATTR_RPC_STATUS_CODE = 'rpc.status_code';
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_NETWORK_TRANSPORT = 'network.transport';
export const ATTR_ERROR_TYPE = 'error.type';

// containers and processes
export const ATTR_CONTAINER_ID = 'container.id';
export const ATTR_CONTAINER_RUNTIME_NAME = 'container.runtime.name';
export const ATTR_CONTAINER_IMAGE_NAME = 'container.image.name';
export const ATTR_PROCESS_EXIT_CODE = 'process.exit.code';
export const ATTR_PROCESS_PID = 'process.pid';
export const ATTR_PROCESS_PARENT_PID = 'process.parent_pid';
export const ATTR_PROCESS_EXECUTABLE_NAME = 'process.executable.name';

// exceptions (the `exception` event)
export const ATTR_EXCEPTION_TYPE = 'exception.type';
export const ATTR_EXCEPTION_MESSAGE = 'exception.message';

// wasmts' own (no convention covers them)
export const ATTR_WASMTS_NAMESPACE = 'wasmts.namespace';
export const ATTR_WASMTS_EXEC_ID = 'wasmts.exec_id';
export const ATTR_WASMTS_TASK_PID = 'wasmts.task.pid';
export const ATTR_WASMTS_PROCESS = 'wasmts.process';
/** What the child compiled: 'module' or 'component'. */
export const ATTR_WASMTS_WASM_KIND = 'wasmts.wasm.kind';
/** Whether a component's transpiled form came from the cache ('hit') or was made now. */
export const ATTR_WASMTS_COMPONENT_CACHE = 'wasmts.component.cache';
export const ATTR_WASM_MODULE_PATH = 'wasm.module.path';
export const ATTR_WASM_MODULE_SIZE = 'wasm.module.size';
export const ATTR_WASM_MODULE_SHA256 = 'wasm.module.sha256';
export const ATTR_WASM_TRAP = 'wasm.trap';

/** gRPC status names (ttrpc uses gRPC's codes), as rpc.status_code carries them. */
const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export function grpcStatusName(code: number): string {
  return GRPC_STATUS_NAMES[code] ?? String(code);
}

/**
 * The gRPC conventions' rule for server spans: only these codes mark the span as
 * an error; the others (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, …) are
 * answers the server gave on purpose.
 */
const SERVER_ERROR_CODES = new Set([2, 4, 12, 13, 14, 15]);
export function isServerError(code: number): boolean {
  return SERVER_ERROR_CODES.has(code);
}
