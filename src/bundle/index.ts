// The bundle module's public API: everything the shim reads from or writes
// into a container's bundle goes through these (no other module joins a
// file name onto a bundle path), and config.json and the Update RPC's
// resources come out of here parsed and validated.

// config.json
export {
  checkProcess,
  parseSpec,
  CONTAINER_TYPE_ANNOTATION,
  readAnnotations,
  readAnnotationsAsync,
  readCgroupsPath,
  readSpec,
  SpecError,
  type OciMount,
  type OciProcess,
  type OciSpec,
  type OciUser,
} from './spec.js';
export { decodeLinuxResources, parseLinuxResources, type LinuxResources } from './resources.js';

// field checks for JSON read across a process boundary
export { isId, isObject, isStringList, type JsonObject } from './fields.js';

// the shim's own files
export {
  encodeDeleteResponse,
  logFifoPath,
  namespaceOfBundle,
  readAddress,
  readDeleteResponse,
  removeAddress,
  rootfsPath,
  writeAddress,
  writeDeleteResponse,
  writePauseModule,
  writeShimPid,
} from './files.js';

// what cleanup finds after a container: its children's pids, its mounts
export {
  readMountRecord,
  readRecordedPids,
  recordMount,
  removeExecPid,
  removeInitPid,
  removeMountRecord,
  writeExecPid,
  writeInitPid,
  type RecordedPids,
} from './records.js';

// paths inside the rootfs, as the container sees them
export { inRootfs, resolveGuestPath, type ResolveOptions } from './guest-path.js';
