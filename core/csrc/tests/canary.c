/* Proves the sanitizers are live: run.sh expects this program to be stopped by AddressSanitizer
 * (argument "asan") and by UndefinedBehaviorSanitizer (argument "ubsan"). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "asan") == 0) {
        volatile char *p = malloc(8);
        free((void *)p);
        return p[0]; /* use after free */
    } else if (argc > 1 && strcmp(argv[1], "ubsan") == 0) {
        volatile int x = INT_MAX;
        x = x + argc; /* signed overflow */
        return x == 0;
    }
    return 0;
}
