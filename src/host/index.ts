// The host module's public API: what a container holds on the host (its
// mounts, its cgroup, its leftover processes), set up by the daemon and
// released by whichever process deletes the container.
export { openCgroup, removeCgroup, type Cgroup, type CgroupStats } from './cgroup.js';
export { killLeftoverChildren, mountsUnder, unmountRootfs, USER_ROOTS } from './cleanup.js';
export { bindMountsOf, bindRootfs, makeReadOnly, mountBinds, mountSnapshot, type SnapshotMount } from './mounts.js';
