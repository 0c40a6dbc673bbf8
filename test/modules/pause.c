// The pod sandbox ("pause") program of the CRI test's locally built pause
// image: sleeps until SIGTERM or SIGINT, then exits 0, like Kubernetes' pause.
// The native static build is what goes into the image (CRI requires a sandbox
// image to exist locally and would pull one otherwise); wasmts runs its own
// built-in pause module in its place. The Wasm build just sleeps (WASI has no
// signal handlers; a signal ends the module from outside).
#include <unistd.h>

#ifndef __wasi__
#include <signal.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}
#endif

int main(void) {
#ifdef __wasi__
    for (;;) sleep(3600);
#else
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, 0);
    sigaction(SIGINT, &sa, 0);
    while (!stopping) pause();
    return 0;
#endif
}
