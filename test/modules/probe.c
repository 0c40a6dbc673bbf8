/* probe: the multipurpose test module.  Usage: probe <cmd> [args...]
 * Built for wasm32-wasi (build/modules/probe.wasm) and natively as a static
 * binary (build/modules/probe.native) by scripts/build-modules.sh.
 *
 * Options before <cmd>: -C DIR (chdir first), -P (chdir to $PWD first, if set).
 *
 * Commands (all output lines end in "\n"; failures print to stderr and
 * exit non-zero unless stated otherwise):
 *   args [a b ...]      print each argument (argv[2..]) on its own line
 *   argv0               print argv[0]
 *   env                 print every environ entry, one per line
 *   cwd                 print getcwd() ("getcwd failed: <err>" on failure)
 *   pwd                 print "cwd=<getcwd()> PWD=<getenv PWD or (unset)>"
 *   cat PATH            copy the file to stdout
 *   write PATH TEXT     write TEXT to PATH (truncate), read it back, print it
 *   exit CODE           exit with CODE (0..255)
 *   stdin [PREFIX]      read one line from stdin, print PREFIX + line
 *                       (PREFIX default "got: "); at EOF prints PREFIX+"<eof>"
 *   stderr TEXT         write TEXT + "\n" to stderr, exit 0
 *   trap                __builtin_trap() (wasm: unreachable; native: SIGILL)
 *   sleep SECONDS       nanosleep (fractional seconds allowed), then print "slept"
 *   daemon [MS]         print "tick N" every MS ms (default 100) forever,
 *                       flushing each line; N counts from 0
 *   bigout MB           write MB megabytes (MB*1048576 bytes) of a verifiable
 *                       pattern: 64-byte lines, line i (from 0) is
 *                       sprintf("%08d ", i) + PATTERN54 + "\n", where PATTERN54 =
 *                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"
 *                       (16384 lines per MB)
 *   trace               print getenv("TRACECONTEXT") or "(unset)"
 *   open PATH...        for each PATH try fopen(PATH, "r") and print
 *                       "open <PATH>: ok <first line>" or
 *                       "open <PATH>: fail <strerror>"; always exit 0
 *   escape [PATH...]    like open, over "../../etc/passwd", "/etc/hostname",
 *                       "/../../etc/passwd", "../etc/hostname" plus PATHs
 *   oom [CHUNK_MB]      malloc+touch CHUNK_MB (default 1) MiB chunks until malloc
 *                       fails, then print "oom: allocated N MiB (K chunks)",
 *                       exit 3
 *                       (natively, with a memory limit, the kernel kills it)
 *   spin                burn CPU forever
 *
 * Exports besides _start (wasm only), run with the `probe.wasm#NAME` entry
 * syntax, which calls them without running main:
 *   hello               print "hello from an export" and the first line of
 *                       /data/greeting.txt (when there is one), return
 *   goodbye             print "goodbye from an export" to stderr, exit(3)
 *   crash               __builtin_trap()
 *   add(a, b)           takes parameters, so it is no entry point
 *
 * wasi-libc cwd finding (Debian bookworm wasi-libc 0.0~git20220510.9886d3d-2,
 * clang 14, node 20 node:wasi preview1), checked empirically:
 *   - The initial cwd is ALWAYS "/": libc starts with __wasilibc_cwd = "/" and
 *     never reads PWD (`probe pwd` with env PWD=/app prints "cwd=/ PWD=/app").
 *   - A relative path is made absolute against that cwd ("data.txt" ->
 *     "/data.txt"), the leading "/" is stripped and the rest is matched
 *     against the preopen names by prefix; a preopen named "/" or "." (or
 *     "./") both become the empty prefix, which matches every path.
 *     So with preopens {'/': root}, fopen("data.txt") opens root/data.txt, and
 *     "../../etc/passwd" is normalised to "/etc/passwd" = root/etc/passwd (no
 *     escape; "/etc/hostname" likewise stays inside root).
 *   - An extra '.' preopen does NOT give a cwd: "/" and "." tie, and the one
 *     registered LAST (the later key in node's preopens object) wins for ALL
 *     paths, relative and absolute. {'/': root, '.': root/app} sends even
 *     "/data.txt" to root/app/data.txt; {'.': root/app, '/': root} behaves
 *     exactly like {'/': root}. Never combine them.
 *   - With only {'/app': dir} (no "/" preopen), relative paths fail with
 *     ENOTCAPABLE ("Capabilities insufficient"), because "x" -> "/x".
 *   - chdir() works (it validates the directory through the preopens, then
 *     only updates libc's string): `probe -C /app open data.txt` opens
 *     root/app/data.txt and getcwd() returns "/app"; "../data.txt" from /app
 *     is root/data.txt. `probe -P ...` = chdir(getenv("PWD")).
 *   => The host cannot set a preview1 module's cwd with this libc: no WASI
 *      call carries it and PWD is ignored. Honouring process.cwd needs the
 *      module's cooperation (it calls chdir($PWD)); the host can at most
 *      export PWD and keep {'/': rootfs} as the only preopen.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PATTERN54 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"

static int usage(void) {
    fprintf(stderr,
            "usage: probe [-C DIR|-P] <args|argv0|env|cwd|pwd|cat|write|exit|stdin|stderr|trap|"
            "sleep|daemon|bigout|trace|open|escape|oom|spin> [args...]\n");
    return 2;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void try_open(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("open %s: fail %s\n", path, strerror(errno));
        return;
    }
    char line[256];
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    line[strcspn(line, "\n")] = '\0';
    printf("open %s: ok %s\n", path, line);
    fclose(f);
}

static int cmd_cat(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cat %s: %s\n", path, strerror(errno));
        return 1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    int err = ferror(f);
    fclose(f);
    return err ? 1 : 0;
}

static int cmd_write(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = strlen(text);
    if (fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return cmd_cat(path) ? 1 : (putchar('\n'), 0);
}

static int cmd_bigout(long mb) {
    static char buf[65536];
    if (mb < 0 || mb > 6000) {
        fprintf(stderr, "bigout: MB must be 0..6000\n");
        return 2;
    }
    long lines = mb * 16384L, i = 0;
    while (i < lines) {
        size_t off = 0;
        while (off + 64 <= sizeof buf && i < lines) {
            char line[80];
            snprintf(line, sizeof line, "%08ld " PATTERN54 "\n", i % 100000000L);
            memcpy(buf + off, line, 64);
            off += 64;
            i++;
        }
        if (fwrite(buf, 1, off, stdout) != off) {
            fprintf(stderr, "bigout: write failed: %s\n", strerror(errno));
            return 1;
        }
    }
    return fflush(stdout) ? 1 : 0;
}

static int cmd_oom(long chunk_mb) {
    /* Keep every chunk reachable (linked list) and touch every page through a
     * volatile pointer, so the compiler can neither drop the allocations nor
     * assume malloc never fails. */
    size_t chunk = (size_t)chunk_mb << 20;
    void **head = NULL;
    long total = 0;
    for (;;) {
        void **p = malloc(chunk);
        if (!p) break;
        volatile char *c = (volatile char *)p;
        for (size_t o = 0; o < chunk; o += 4096) c[o] = (char)(o >> 12);
        *p = head;
        head = p;
        total += chunk_mb;
    }
    long n = 0;
    for (void **p = head; p; p = *p) n++;
    printf("oom: allocated %ld MiB (%ld chunks)\n", total, n);
    return 3;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Leading options, before the command:
     *   -C DIR   chdir(DIR) first
     *   -P       chdir(getenv("PWD")) first, if PWD is set */
    while (argc > 1 && argv[1][0] == '-') {
        const char *dir = NULL;
        int shift = 1;
        if (!strcmp(argv[1], "-C") && argc > 2) {
            dir = argv[2];
            shift = 2;
        } else if (!strcmp(argv[1], "-P")) {
            dir = getenv("PWD");
        } else {
            return usage();
        }
        if (dir && chdir(dir) != 0) {
            fprintf(stderr, "chdir %s: %s\n", dir, strerror(errno));
            return 1;
        }
        argv[shift] = argv[0];
        argv += shift;
        argc -= shift;
    }
    if (argc < 2) return usage();
    const char *cmd = argv[1];

    if (!strcmp(cmd, "args")) {
        for (int i = 2; i < argc; i++) puts(argv[i]);
        return 0;
    }
    if (!strcmp(cmd, "argv0")) {
        puts(argv[0]);
        return 0;
    }
    if (!strcmp(cmd, "env")) {
        for (char **e = environ; e && *e; e++) puts(*e);
        return 0;
    }
    if (!strcmp(cmd, "cwd") || !strcmp(cmd, "pwd")) {
        char buf[4096];
        const char *cwd = getcwd(buf, sizeof buf);
        if (!cwd) {
            printf("getcwd failed: %s\n", strerror(errno));
            return 1;
        }
        if (!strcmp(cmd, "cwd")) {
            puts(cwd);
        } else {
            const char *pwd = getenv("PWD");
            printf("cwd=%s PWD=%s\n", cwd, pwd ? pwd : "(unset)");
        }
        return 0;
    }
    if (!strcmp(cmd, "cat") && argc == 3) return cmd_cat(argv[2]);
    if (!strcmp(cmd, "write") && argc == 4) return cmd_write(argv[2], argv[3]);
    if (!strcmp(cmd, "exit") && argc == 3) return atoi(argv[2]) & 255;
    if (!strcmp(cmd, "stdin")) {
        const char *prefix = argc > 2 ? argv[2] : "got: ";
        char line[4096];
        if (!fgets(line, sizeof line, stdin)) {
            printf("%s<eof>\n", prefix);
            return 0;
        }
        line[strcspn(line, "\n")] = '\0';
        printf("%s%s\n", prefix, line);
        return 0;
    }
    if (!strcmp(cmd, "stderr") && argc == 3) {
        fprintf(stderr, "%s\n", argv[2]);
        return 0;
    }
    if (!strcmp(cmd, "trap")) {
        fflush(stdout);
        __builtin_trap();
    }
    if (!strcmp(cmd, "sleep") && argc == 3) {
        double s = atof(argv[2]);
        sleep_ms((long)(s * 1000.0));
        puts("slept");
        return 0;
    }
    if (!strcmp(cmd, "daemon")) {
        long ms = argc > 2 ? atol(argv[2]) : 100;
        if (ms <= 0) ms = 100;
        for (long n = 0;; n++) {
            printf("tick %ld\n", n);
            fflush(stdout);
            sleep_ms(ms);
        }
    }
    if (!strcmp(cmd, "bigout") && argc == 3) return cmd_bigout(atol(argv[2]));
    if (!strcmp(cmd, "trace")) {
        const char *t = getenv("TRACECONTEXT");
        puts(t ? t : "(unset)");
        return 0;
    }
    if (!strcmp(cmd, "open")) {
        for (int i = 2; i < argc; i++) try_open(argv[i]);
        return 0;
    }
    if (!strcmp(cmd, "escape")) {
        static const char *paths[] = {"../../etc/passwd", "/etc/hostname",
                                      "/../../etc/passwd", "../etc/hostname"};
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) try_open(paths[i]);
        for (int i = 2; i < argc; i++) try_open(argv[i]);
        return 0;
    }
    if (!strcmp(cmd, "oom")) return cmd_oom(argc > 2 && atol(argv[2]) > 0 ? atol(argv[2]) : 1);
    if (!strcmp(cmd, "spin")) {
        volatile uint64_t x = 0;
        for (;;) x++;
    }
    return usage();
}

#ifdef __wasm__
/* Exports are called without main: nothing flushes stdio at the end, so they flush themselves. */
__attribute__((export_name("hello"))) void hello(void) {
    puts("hello from an export");
    FILE *f = fopen("/data/greeting.txt", "r");
    char line[256];
    if (f && fgets(line, sizeof line, f)) fputs(line, stdout);
    if (f) fclose(f);
    fflush(stdout);
}

__attribute__((export_name("goodbye"))) void goodbye(void) {
    fputs("goodbye from an export\n", stderr);
    exit(3);
}

__attribute__((export_name("crash"))) void crash(void) {
    __builtin_trap();
}

__attribute__((export_name("add"))) int add(int a, int b) {
    return a + b;
}
#endif
