// The test harness: what every suite, the demo, the bench and the soak share.
//
//   constants     paths, runtime name, platform, timeouts
//   wait          sleep, until (polling), collect (a stream's text)
//   processes     /proc: matching processes, descendants, liveness, fds, memory, ids
//   mounts        mounts below a dir, unmounting them, whether overlayfs works
//   containerd    a private containerd under a temp dir (config, ctr, cleanup)
//   ctr           running ctr against one containerd
//   bundles       task bundles and shim sockets, where containerd puts them
//   daemons       the shim processes of one containerd, what an idle daemon must not hold
//   leaks         the leak census of one containerd
//   build, image  the test modules and shim bundles built; the test image packed
//   suite         one containerd + image + ids per test file; e2e() and events for test bodies
//   shim-exec     the shim binary run by hand, as containerd runs it
//   start-exchange  containerd 1.6 to 2.3's `start` exchange, emulated
//   endpoints     misbehaving OTLP endpoints
//   otel-env      keeping our OTEL_* variables out of what we start
//   stats         median, percentile
//   planted-rootfs  a rootfs whose symlinks point out of it
//   json          JSON parsed as unknown, checked, then typed
export * from './constants.js';
export * from './wait.js';
export * from './processes.js';
export * from './mounts.js';
export * from './ctr.js';
export * from './containerd.js';
export * from './bundles.js';
export * from './daemons.js';
export * from './leaks.js';
export * from './build.js';
export * from './image.js';
export * from './suite.js';
export * from './test-body.js';
export * from './shim-exec.js';
export * from './start-exchange.js';
export * from './endpoints.js';
export * from './otel-env.js';
export * from './stats.js';
export * from './planted-rootfs.js';
export * from './json.js';
