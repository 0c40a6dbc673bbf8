/* fib: CPU-bound benchmark module. Computes recursive fib(N) (N from argv[1],
 * default 35) and prints the number alone on one line. fib(35) = 9227465.
 * With FIB_TIME set, it also prints "fib-ns <nanoseconds>" of the computation
 * alone on stderr, so a benchmark can compare compute apart from start-up. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long long fib(unsigned n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv) {
    unsigned n = 35;
    if (argc > 1) {
        char *end;
        long v = strtol(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0' || v < 0 || v > 90) {
            fprintf(stderr, "fib: bad N: %s\n", argv[1]);
            return 2;
        }
        n = (unsigned)v;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long long r = fib(n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%llu\n", r);
    if (getenv("FIB_TIME"))
        fprintf(stderr, "fib-ns %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    return 0;
}
