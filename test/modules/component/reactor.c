/* reactor: a component that is no wasi:cli command. Built as a WASI reactor
 * (no _start) and wrapped by jco's preview 1 reactor adapter, it exports no
 * wasi:cli/run, so wasmts must refuse it at Create and say so. */
int answer(void) { return 42; }
