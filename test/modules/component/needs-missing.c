/* needs-missing: a wasi:cli command component (scripts/build-modules.sh wraps
 * it with jco's preview 1 command adapter) that also imports
 * wasmts:test/missing#ping (needs-missing.wit), which wasmts cannot provide.
 * It calls ping only when given an argument, so the import is real, not
 * dropped by the linker. */
#include <stdio.h>

__attribute__((import_module("wasmts:test/missing"), import_name("ping")))
extern unsigned ping(void);

int main(int argc, char **argv) {
    (void)argv;
    printf("ping: %u\n", argc > 1 ? ping() : 0u);
    return 0;
}
