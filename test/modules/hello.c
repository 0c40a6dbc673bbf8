/* hello: the smallest test module. Prints one line and exits 0.
 * Built both for wasm32-wasi (hello.wasm) and natively (hello.native), which
 * print exactly the same text, so runc and wasmts runs can be compared. */
#include <stdio.h>

int main(void) {
    puts("hello from wasm");
    return 0;
}
