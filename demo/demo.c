/* The wasmts demo module: a few subcommands to try in a Wasm container.
 *   demo echo <words…>      print the words
 *   demo sleep <seconds>    sleep, then say so
 *   demo exit <code>        exit with that status
 *   demo write <file> <text> write text to a file (in the container's rootfs)
 *   demo cat <file>         print a file
 *   demo [daemon]           print a line every second until killed
 * Build: clang --target=wasm32-wasi -O2 demo.c -o demo.wasm
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void) {
  fprintf(stderr, "usage: demo [echo <words…> | sleep <s> | exit <code> | write <file> <text> | cat <file> | daemon]\n");
  return 2;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "daemon";
  if (strcmp(cmd, "echo") == 0) {
    for (int i = 2; i < argc; i++) printf("%s%s", argv[i], i + 1 < argc ? " " : "");
    printf("\n");
    return 0;
  }
  if (strcmp(cmd, "sleep") == 0 && argc == 3) {
    double s = atof(argv[2]);
    sleep_ms((long)(s * 1000));
    printf("slept %s s\n", argv[2]);
    return 0;
  }
  if (strcmp(cmd, "exit") == 0 && argc == 3) return atoi(argv[2]);
  if (strcmp(cmd, "write") == 0 && argc == 4) {
    FILE *f = fopen(argv[2], "w");
    if (!f) {
      fprintf(stderr, "demo: cannot write %s: %s\n", argv[2], strerror(errno));
      return 1;
    }
    fprintf(f, "%s\n", argv[3]);
    fclose(f);
    printf("wrote %zu bytes to %s\n", strlen(argv[3]) + 1, argv[2]);
    return 0;
  }
  if (strcmp(cmd, "cat") == 0 && argc == 3) {
    FILE *f = fopen(argv[2], "r");
    if (!f) {
      fprintf(stderr, "demo: cannot read %s: %s\n", argv[2], strerror(errno));
      return 1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
  }
  if (strcmp(cmd, "daemon") == 0) {
    for (unsigned long i = 1;; i++) {
      printf("hello from wasmts, tick %lu\n", i);
      fflush(stdout);
      sleep_ms(1000);
    }
  }
  return usage();
}
