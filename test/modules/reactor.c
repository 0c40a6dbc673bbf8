/* reactor: a WASI reactor module (no _start; _initialize runs the
 * constructors), for the `reactor.wasm#NAME` entry syntax.
 * build-modules: wasm-only -mexec-model=reactor
 *
 * Exports:
 *   greet    print "hello from a reactor (initialized=42)" and $WHO, return;
 *            initialized=42 proves _initialize ran before the export
 *   fail     print "reactor failing" to stderr, exit(9)
 *   crash    __builtin_trap()
 */
#include <stdio.h>
#include <stdlib.h>

static int initialized;

__attribute__((constructor)) static void set_up(void) {
    initialized = 42;
}

__attribute__((export_name("greet"))) void greet(void) {
    const char *who = getenv("WHO");
    printf("hello from a reactor (initialized=%d)\nWHO=%s\n", initialized, who ? who : "(unset)");
    fflush(stdout);
}

__attribute__((export_name("fail"))) void fail(void) {
    fputs("reactor failing\n", stderr);
    exit(9);
}

__attribute__((export_name("crash"))) void crash(void) {
    __builtin_trap();
}
