/* C unit harness for the order book, run under AddressSanitizer + UndefinedBehaviorSanitizer by
 * run.sh. It drives the C API directly: hand-checked scenarios, a long random walk with the
 * consistency check after every command, sparse extreme prices, caps, and load() fed with every
 * truncation and many corruptions of a real dump (it must refuse or accept, never misbehave). */
#include "book.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                   \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t below(uint64_t n) { return rnd() % n; }

static void consistent(const exos_book *b) {
    char msg[160];
    int r = exos_book_check(b, msg, sizeof msg);
    if (r != EXOS_OK) fprintf(stderr, "check: %s\n", msg);
    EXPECT(r == EXOS_OK);
}

static void test_price_time_and_events(void) {
    exos_book *b = exos_book_new(100, 100);
    exos_sink *s = exos_sink_new(4);
    exos_book_set_sink(b, s);
    EXPECT(exos_book_limit(b, 1, 10, EXOS_SELL, 101, 5) == 2);
    EXPECT(exos_book_limit(b, 2, 11, EXOS_SELL, 101, 5) == 2);
    EXPECT(exos_book_limit(b, 3, 12, EXOS_SELL, 100, 1) == 2);
    /* buy 8 @ 101: fills 3 (1 lot), then 1 (5 lots), then 2 lots of 2 */
    int n = exos_book_limit(b, 4, 13, EXOS_BUY, 101, 8);
    EXPECT(n == 6);
    EXPECT(s->ev[0].type == EXOS_EV_ACCEPTED);
    EXPECT(s->ev[1].type == EXOS_EV_FILL && s->ev[1].maker_id == 3 && s->ev[1].price == 100);
    EXPECT(s->ev[2].type == EXOS_EV_L2 && s->ev[2].price == 100 && s->ev[2].size == 0);
    EXPECT(s->ev[3].type == EXOS_EV_FILL && s->ev[3].maker_id == 1 && s->ev[3].size == 5);
    EXPECT(s->ev[4].type == EXOS_EV_FILL && s->ev[4].maker_id == 2 && s->ev[4].size == 2 &&
           s->ev[4].remaining == 3 && (s->ev[4].flags & EXOS_EVF_TAKER_DONE));
    EXPECT(s->ev[5].type == EXOS_EV_L2 && s->ev[5].size == 3 && s->ev[5].remaining == 1);
    EXPECT(s->ev[5].seq == exos_book_seq(b) && exos_book_trade_id(b) == 3);
    for (int i = 1; i < n; ++i) EXPECT(s->ev[i].seq == s->ev[i - 1].seq + 1);
    EXPECT(exos_book_best_price(b, EXOS_SELL) == 101 && exos_book_best_size(b, EXOS_SELL) == 3);
    EXPECT(exos_book_best_price(b, EXOS_BUY) == 0);
    consistent(b);
    exos_sink_free(s);
    exos_book_free(b);
}

static void test_rejects_change_nothing(void) {
    exos_book *b = exos_book_new(2, 1);
    exos_sink *s = exos_sink_new(16);
    exos_book_set_sink(b, s);
    exos_book_limit(b, 1, 1, EXOS_BUY, 10, 1);
    uint64_t seq = exos_book_seq(b);
    struct { uint8_t side, tif, flags, stp; int64_t price, size, expiry; uint64_t id; int reason; } bad[] = {
        {2, 0, 0, 0, 10, 1, 0, 9, EXOS_R_BAD_SIDE},
        {0, 4, 0, 0, 10, 1, 0, 9, EXOS_R_BAD_TIF},
        {0, 0, 0, 3, 10, 1, 0, 9, EXOS_R_BAD_STP},
        {0, EXOS_FOK, 0, EXOS_STP_CANCEL_BOTH, 10, 1, 0, 9, EXOS_R_BAD_STP},
        {0, EXOS_IOC, EXOS_POST_ONLY, 0, 10, 1, 0, 9, EXOS_R_BAD_FLAGS},
        {0, 0, 0, 0, 0, 1, 0, 9, EXOS_R_BAD_PRICE},
        {0, 0, 0, 0, 10, -1, 0, 9, EXOS_R_BAD_SIZE},
        {0, 0, 0, 0, INT64_MAX, 2, 0, 9, EXOS_R_OVERFLOW},
        {0, EXOS_GTD, 0, 0, 10, 1, 0, 9, EXOS_R_BAD_EXPIRY},
        {0, 0, 0, 0, 10, 1, 0, 0, EXOS_R_BAD_ID},
        {0, 0, 0, 0, 10, 1, 0, 1, EXOS_R_DUPLICATE_ID},
        {0, 0, 0, 0, 11, 1, 0, 9, EXOS_R_LEVEL_LIMIT},
        {1, EXOS_FOK, 0, 0, 10, 2, 0, 9, EXOS_R_FOK_UNFILLABLE},
        {1, 0, EXOS_POST_ONLY, 0, 10, 1, 0, 9, EXOS_R_POST_ONLY_WOULD_CROSS},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        int n = exos_book_place(b, bad[i].id, 2, bad[i].side, bad[i].price, bad[i].size,
                                bad[i].tif, bad[i].flags, bad[i].stp, bad[i].expiry, NULL, NULL);
        EXPECT(n == 1 && s->ev[0].type == EXOS_EV_REJECTED && s->ev[0].reason == bad[i].reason);
        EXPECT(s->ev[0].seq == seq);
    }
    exos_book_limit(b, 2, 1, EXOS_BUY, 10, 1);
    EXPECT(exos_book_limit(b, 3, 1, EXOS_BUY, 10, 1) == 1 && s->ev[0].reason == EXOS_R_ORDER_LIMIT);
    EXPECT(exos_book_cancel(b, 77, EXOS_ANY_OWNER, 0) == 1 && s->ev[0].reason == EXOS_R_UNKNOWN_ORDER);
    EXPECT(exos_book_cancel(b, 1, 5, 0) == 1 && s->ev[0].reason == EXOS_R_NOT_OWNER);
    EXPECT(exos_book_amend(b, 1, 1, 10, 1) == 1 && s->ev[0].reason == EXOS_R_NO_CHANGE);
    EXPECT(exos_book_open_orders(b) == 2);
    consistent(b);
    exos_sink_free(s);
    exos_book_free(b);
}

static void test_sparse_prices(void) {
    exos_book *b = exos_book_new(1000, 1000);
    exos_sink *s = exos_sink_new(16);
    exos_book_set_sink(b, s);
    int64_t far = (int64_t)1 << 50;
    exos_book_limit(b, 1, 1, EXOS_BUY, 1, 3);
    exos_book_limit(b, 2, 2, EXOS_SELL, far, 3);
    exos_book_limit(b, 3, 2, EXOS_SELL, INT64_MAX, 1);
    size_t mem = exos_book_memory(b);
    EXPECT(mem < 64 * 1024);
    EXPECT(exos_book_levels(b) == 3);
    EXPECT(exos_book_best_price(b, EXOS_SELL) == far);
    int n = exos_book_limit(b, 4, 3, EXOS_BUY, far, 2);
    EXPECT(n == 3 && s->ev[1].type == EXOS_EV_FILL && s->ev[1].price == far);
    consistent(b);
    exos_sink_free(s);
    exos_book_free(b);
}

static void test_stp_and_amend(void) {
    exos_book *b = exos_book_new(100, 100);
    exos_sink *s = exos_sink_new(16);
    exos_book_set_sink(b, s);
    exos_book_limit(b, 1, 7, EXOS_SELL, 100, 2);
    exos_book_limit(b, 2, 8, EXOS_SELL, 100, 2);
    exos_book_limit(b, 3, 7, EXOS_SELL, 100, 2);
    /* cancel-taker: fills order 1? no: order 1 is the taker's own, so the taker dies at once */
    int n = exos_book_place(b, 4, 7, EXOS_BUY, 100, 5, EXOS_GTC, 0, EXOS_STP_CANCEL_TAKER, 0, NULL, NULL);
    EXPECT(n == 2 && s->ev[1].type == EXOS_EV_CANCELLED && s->ev[1].reason == EXOS_R_STP &&
           s->ev[1].order_id == 4 && s->ev[1].remaining == 5);
    /* cancel-maker: 1 cancelled, 2 filled, 3 cancelled, remainder rests */
    n = exos_book_place(b, 5, 7, EXOS_BUY, 100, 5, EXOS_GTC, 0, EXOS_STP_CANCEL_MAKER, 0, NULL, NULL);
    EXPECT(n == 6 && s->ev[1].reason == EXOS_R_STP && s->ev[1].order_id == 1);
    EXPECT(s->ev[2].type == EXOS_EV_FILL && s->ev[2].maker_id == 2);
    EXPECT(s->ev[3].order_id == 3 && s->ev[4].type == EXOS_EV_L2 && s->ev[4].size == 0);
    EXPECT(s->ev[5].type == EXOS_EV_L2 && s->ev[5].side == EXOS_BUY && s->ev[5].size == 3);
    /* amend: size down keeps priority, size up loses it */
    exos_book_limit(b, 6, 9, EXOS_BUY, 100, 4);
    /* order 5 has filled 2 of 5: total 4 keeps its place, total 9 goes behind order 6 */
    n = exos_book_amend(b, 5, 7, 100, 4);
    EXPECT(n == 2 && s->ev[0].type == EXOS_EV_AMENDED && (s->ev[0].flags & EXOS_EVF_PRIORITY_KEPT));
    exos_order_info info;
    EXPECT(exos_book_get(b, 5, &info) && info.remaining == 2 && info.entry == 5);
    n = exos_book_amend(b, 5, 7, 100, 9);
    EXPECT(n == 2 && s->ev[0].flags == 0 && s->ev[1].size == 11);
    EXPECT(exos_book_get(b, 5, &info) && info.entry == 7 && info.remaining == 7);
    /* total 2 is what has filled already: the rest is cancelled */
    n = exos_book_amend(b, 5, 7, 100, 2);
    EXPECT(n == 2 && s->ev[0].reason == EXOS_R_AMENDED_BELOW_FILLED && s->ev[0].remaining == 7);
    EXPECT(!exos_book_get(b, 5, &info));
    /* amend across the spread matches as a taker */
    exos_book_limit(b, 7, 10, EXOS_SELL, 105, 1);
    n = exos_book_amend(b, 6, 9, 105, 4);
    EXPECT(s->ev[0].type == EXOS_EV_AMENDED && s->ev[2].type == EXOS_EV_FILL &&
           s->ev[2].maker_id == 7);
    EXPECT(exos_book_best_price(b, EXOS_BUY) == 105);
    consistent(b);
    exos_sink_free(s);
    exos_book_free(b);
}

static void test_client_ids_and_cancel_all(void) {
    exos_book *b = exos_book_new(100, 100);
    exos_sink *s = exos_sink_new(16);
    exos_book_set_sink(b, s);
    char cid[16] = "client-order-01";
    uint64_t slots[4] = {1, 2, 3, 4};
    EXPECT(exos_book_place(b, 1, 5, EXOS_BUY, 10, 1, 0, 0, 0, 0, cid, slots) == 2);
    EXPECT(exos_book_place(b, 2, 5, EXOS_BUY, 11, 1, 0, 0, 0, 0, cid, slots) == 1 &&
           s->ev[0].reason == EXOS_R_DUPLICATE_CLIENT_ID);
    EXPECT(exos_book_place(b, 2, 6, EXOS_BUY, 11, 1, 0, 0, 0, 0, cid, slots) == 2);
    exos_order_info info;
    EXPECT(exos_book_get_client_id(b, 6, cid, &info) && info.id == 2 && info.slots[3] == 4);
    EXPECT(exos_book_set_slot(b, 2, 3, 99) == 0 && exos_book_get(b, 2, &info) && info.slots[3] == 99);
    EXPECT(exos_book_cancel_client_id(b, 6, cid, 1) == 2 && s->ev[0].type == EXOS_EV_EXPIRED);
    for (uint64_t id = 10; id < 20; ++id) exos_book_limit(b, id, 5, EXOS_SELL, 20 + (int64_t)id, 1);
    EXPECT(exos_book_set_slot(b, 12, 0, 42) == 0);
    EXPECT(exos_book_cancel_all(b, 5, 0, 42) == 2 && s->ev[0].order_id == 12);
    int n = exos_book_cancel_all(b, 5, -1, 0);
    EXPECT(n == 20);
    for (int i = 0; i + 2 < n; i += 2) EXPECT(s->ev[i].order_id < s->ev[i + 2].order_id);
    EXPECT(exos_book_open_orders(b) == 0 && exos_book_levels(b) == 0);
    consistent(b);
    exos_sink_free(s);
    exos_book_free(b);
}

/* A long random walk over few prices and owners, checking the invariants after every command. */
static exos_book *random_walk(int steps, uint64_t seed) {
    rng_state = seed;
    exos_book *b = exos_book_new(64, 16);
    exos_sink *s = exos_sink_new(8);
    exos_book_set_sink(b, s);
    exos_cmd batch[8];
    uint64_t next_id = 1;
    for (int i = 0; i < steps; ++i) {
        uint64_t owner = below(4);
        int64_t price = 100 + (int64_t)below(8);
        int64_t size = 1 + (int64_t)below(20);
        char cid[16] = {0};
        cid[0] = (char)below(6);
        switch (below(9)) {
        case 0: case 1: case 2: {
            uint64_t slots[4] = {rnd(), 0, 0, below(3)};
            uint8_t tif = (uint8_t)below(4), stp = (uint8_t)below(3);
            uint8_t flags = (uint8_t)(below(4) == 0 && tif < 2);
            exos_book_place(b, next_id++, owner, (uint8_t)below(2), price, size, tif, flags, stp,
                            tif == EXOS_GTD ? 1000 : 0, below(2) ? cid : NULL, slots);
            break;
        }
        case 3: exos_book_cancel(b, 1 + below(next_id), below(2) ? owner : EXOS_ANY_OWNER, (int)below(2)); break;
        case 4: exos_book_cancel_client_id(b, owner, cid, 0); break;
        case 5: exos_book_amend(b, 1 + below(next_id), owner, price, size); break;
        case 6: if (below(8) == 0) exos_book_cancel_all(b, owner, below(2) ? -1 : 3, below(3)); break;
        case 7: exos_book_limit(b, next_id++, owner, (uint8_t)below(2), price, size); break;
        default: {
            int n = 1 + (int)below(8);
            memset(batch, 0, sizeof batch);
            for (int k = 0; k < n; ++k) {
                batch[k].op = (uint8_t)below(6);
                batch[k].id = batch[k].op == EXOS_OP_PLACE ? next_id++ : 1 + below(next_id);
                batch[k].owner = below(4);
                batch[k].side = (uint8_t)below(2);
                batch[k].price = 100 + (int64_t)below(8);
                batch[k].size = 1 + (int64_t)below(20);
                batch[k].slot_filter = -1;
                batch[k].tif = (uint8_t)below(3) == 0 ? EXOS_IOC : EXOS_GTC;
            }
            int64_t r = exos_book_batch(b, batch, (size_t)n);
            EXPECT(r >= 0);
        }
        }
        char msg[160];
        if (exos_book_check(b, msg, sizeof msg) != EXOS_OK) {
            fprintf(stderr, "random walk step %d: %s\n", i, msg);
            failures++;
            break;
        }
    }
    exos_sink_free(s);
    return b;
}

static void test_random_walk_and_dump(void) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        exos_book *b = random_walk(3000, seed * 0x2545f4914f6cdd1dULL);
        size_t size = exos_book_dump_size(b);
        uint8_t *dump = malloc(size), *again = malloc(size);
        EXPECT(exos_book_dump(b, dump, size) == size);
        char msg[160];
        exos_book *c = exos_book_load(dump, size, msg, sizeof msg);
        EXPECT(c != NULL);
        if (c) {
            consistent(c);
            EXPECT(exos_book_dump(c, again, size) == size && memcmp(dump, again, size) == 0);
            exos_book_free(c);
        }
        /* every truncation is refused; corruptions are refused or give a consistent book */
        for (size_t cut = 0; cut < size; cut += 1 + cut / 7) {
            exos_book *t = exos_book_load(dump, cut, msg, sizeof msg);
            EXPECT(t == NULL);
            exos_book_free(t);
        }
        for (int k = 0; k < 400 && size > 0; ++k) {
            size_t at = (size_t)below(size);
            uint8_t saved = dump[at];
            dump[at] ^= (uint8_t)(1u << below(8));
            exos_book *t = exos_book_load(dump, size, msg, sizeof msg);
            if (t) consistent(t);
            exos_book_free(t);
            dump[at] = saved;
        }
        free(dump);
        free(again);
        exos_book_free(b);
    }
}

static void test_caps_and_sink_growth(void) {
    exos_book *b = exos_book_new(5000, 5000);
    exos_sink *s = exos_sink_new(1);
    exos_book_set_sink(b, s);
    for (uint64_t id = 1; id <= 5000; ++id) exos_book_limit(b, id, id, EXOS_SELL, (int64_t)id, 1);
    EXPECT(exos_book_limit(b, 6000, 1, EXOS_SELL, 1, 1) == 1 && s->ev[0].reason == EXOS_R_ORDER_LIMIT);
    /* one taker sweeps every level: 1 accepted + 5000 fills + 5000 L2 */
    int n = exos_book_place(b, 7000, 0, EXOS_BUY, 5000, 5000, EXOS_IOC, 0, 0, 0, NULL, NULL);
    EXPECT(n == 10001 && s->cap >= 10001);
    EXPECT(exos_book_open_orders(b) == 0 && exos_book_levels(b) == 0);
    consistent(b);
    exos_sink_free(s);
    exos_book_free(b);
}

int main(void) {
#if defined(__SANITIZE_ADDRESS__)
    printf("sanitizers: AddressSanitizer active (__SANITIZE_ADDRESS__)\n");
#else
    printf("sanitizers: AddressSanitizer NOT active\n");
#endif
    test_price_time_and_events();
    test_rejects_change_nothing();
    test_sparse_prices();
    test_stp_and_amend();
    test_client_ids_and_cancel_all();
    test_caps_and_sink_growth();
    test_random_walk_and_dump();
    printf("book harness: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
