/* fib: CPU-bound benchmark module. Computes recursive fib(N) (N from argv[1],
 * default 35) and prints the number alone on one line. fib(35) = 9227465. */
#include <stdio.h>
#include <stdlib.h>

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
    printf("%llu\n", fib(n));
    return 0;
}
