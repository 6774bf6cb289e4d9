/* t_hello.c — the smallest WASI command: used to measure tmqtt-wasm's start-up time
 * and resident memory, and as the module with a single import module (WASI only). */
#include <stdio.h>
int main(void)
{
    puts("hello from wasm");
    return 0;
}
