#define _POSIX_C_SOURCE 199309L
/* Native driver: the reference stream through exos_book_batch with no Python at all, to separate
 * the book's own cost from the binding's. Usage: stream_native STREAM.bin [repeats] */
#include "book.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s STREAM.bin [repeats]\n", argv[0]);
        return 2;
    }
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    FILE *f = fopen(argv[1], "rb");
    if (!f) return perror(argv[1]), 1;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t n = (size_t)bytes / 24;
    unsigned char *raw = malloc((size_t)bytes);
    if (fread(raw, 1, (size_t)bytes, f) != (size_t)bytes) return 1;
    fclose(f);
    exos_cmd *cmds = calloc(n, sizeof *cmds);
    for (size_t i = 0; i < n; ++i) {
        const unsigned char *r = raw + 24 * i;
        uint32_t qty;
        int64_t price;
        uint64_t oid;
        memcpy(&qty, r + 4, 4);
        memcpy(&price, r + 8, 8);
        memcpy(&oid, r + 16, 8);
        cmds[i].op = r[0] == 1 ? EXOS_OP_CANCEL : EXOS_OP_PLACE;
        cmds[i].side = r[1];
        cmds[i].id = oid;
        cmds[i].owner = r[0] == 1 ? UINT64_MAX : 1 + oid % 5000 + 5000 * r[1];
        cmds[i].price = price;
        cmds[i].size = qty;
        cmds[i].slot_filter = -1;
    }
    exos_sink *sink = exos_sink_new((uint32_t)(4 * n));
    double best = 1e9;
    for (int k = 0; k < repeats; ++k) {
        exos_book *b = exos_book_new(1 << 20, 1 << 14);
        exos_book_set_sink(b, sink);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t events = exos_book_batch(b, cmds, n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (s < best) best = s;
        printf("run %d: %.2f M ops/s, %lld events, %llu fills, %u resting\n", k, (double)n / s / 1e6,
               (long long)events, (unsigned long long)exos_book_trade_id(b), exos_book_open_orders(b));
        exos_book_free(b);
    }
    printf("best: %.2f M ops/s\n", (double)n / best / 1e6);
    exos_sink_free(sink);
    free(cmds);
    free(raw);
    return 0;
}
