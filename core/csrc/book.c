/* exos order book: price-time priority matching over sparse integer prices.
 *
 * Semantics are specified in docs/book.md; exos.refbook is an independent Python model of the same
 * specification and the two are compared on random command streams.
 *
 * Layout:
 * - orders live in one pool (array of order_t, addressed by u32 index, free list), so the book holds
 *   no per-order allocation and no Python object;
 * - each side keeps its levels in a sorted array of keys (bids: price, asks: -price) with the best
 *   level at the end, so the best price is O(1) and most inserts (near the touch) move few entries;
 *   prices far apart cost nothing between them;
 * - hash tables with linear probing and backward-shift deletion map id -> order, (owner, client id)
 *   -> order and owner -> list of the owner's orders in entry order (for cancel-all).
 * Every allocation a command needs is reserved during validation, so a command that fails for lack
 * of memory changes nothing; only the event sink grows while matching.
 */
#include "book.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX
#define FLAG_HAS_CLIENT_ID 2u
#define LEVEL_KEY(side, price) ((side) == EXOS_BUY ? (price) : -(price))

typedef struct order {
    uint64_t id;
    uint64_t owner;
    int64_t price;
    int64_t size;
    int64_t remaining;
    int64_t expiry;
    uint64_t entry;
    uint64_t slots[EXOS_N_SLOTS];
    uint8_t client_id[EXOS_CLIENT_ID_LEN];
    uint32_t prev, next;   /* queue within the level; next doubles as the free-list link */
    uint32_t oprev, onext; /* the owner's orders in entry order */
    uint32_t level;
    uint8_t side, tif, flags, stp; /* flags: EXOS_POST_ONLY | FLAG_HAS_CLIENT_ID */
} order_t;

typedef struct level {
    int64_t price;
    int64_t volume;
    uint32_t head, tail, count;
    uint8_t side;
} level_t;

typedef struct side_index {
    int64_t *key;  /* ascending; the best level is the last one */
    uint32_t *lvl; /* level index for each key */
    uint32_t n, cap;
} side_index;

typedef struct owner_entry {
    uint64_t owner;
    uint32_t head, tail, count, used;
} owner_entry;

struct exos_book {
    order_t *orders;
    uint32_t ocap, ohigh, ofree, n_orders;
    level_t *lvls;
    uint32_t lcap, lhigh, lfree, n_levels;
    side_index sides[2];
    uint32_t *ids; /* order index + 1, 0 = empty */
    uint32_t id_mask;
    uint32_t *cids;
    uint32_t cid_mask, n_cids;
    owner_entry *owners;
    uint32_t own_mask, n_owners;
    uint64_t seq, trade_id, entry;
    uint32_t max_orders, max_levels;
    uint32_t cmd;
    exos_sink *sink;
};

/* ---------------------------------------------------------------- small helpers */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Fibonacci hashing for ids and owners: two instructions, and it spreads sequential ids evenly. */
static inline uint32_t hash_u64(uint64_t x) {
    return (uint32_t)((x * 0x9e3779b97f4a7c15ULL) >> 32);
}

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

static inline void store64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t load32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static inline int mul_overflows(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r);
}

static inline uint64_t client_id_hash(uint64_t owner, const uint8_t *cid) {
    return mix64(owner ^ mix64(load64(cid) ^ mix64(load64(cid + 8) + 0x9e3779b97f4a7c15ULL)));
}

static void set_message(char *message, size_t len, const char *text) {
    if (message && len) {
        strncpy(message, text, len - 1);
        message[len - 1] = '\0';
    }
}

/* ---------------------------------------------------------------- event sink */

exos_sink *exos_sink_new(uint32_t cap) {
    exos_sink *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (cap < 16) cap = 16;
    s->ev = malloc((size_t)cap * sizeof *s->ev);
    if (!s->ev) {
        free(s);
        return NULL;
    }
    s->cap = cap;
    return s;
}

void exos_sink_free(exos_sink *sink) {
    if (!sink) return;
    free(sink->ev);
    free(sink);
}

/* Growing the sink is the one allocation that can happen mid-match, after state has changed; a
 * partial command cannot be undone, so running out of memory here is fatal. */
static void sink_grow(exos_sink *s) {
    uint32_t cap = s->cap ? s->cap : 16;
    if (cap > UINT32_MAX / 2) {
        fputs("exos book: event sink exceeds 2^31 events\n", stderr);
        abort();
    }
    cap *= 2;
    exos_event *ev = realloc(s->ev, (size_t)cap * sizeof *ev);
    if (!ev) {
        fputs("exos book: out of memory growing the event sink\n", stderr);
        abort();
    }
    s->ev = ev;
    s->cap = cap;
}

static inline exos_event *emit_slot(exos_sink *s) {
    if (s->len == s->cap) sink_grow(s);
    return &s->ev[s->len++];
}

static inline void emit_order(exos_book *b, exos_sink *s, uint8_t type, uint8_t reason,
                              uint8_t flags, const order_t *o, int64_t remaining) {
    exos_event *e = emit_slot(s);
    *e = (exos_event){
        .seq = ++b->seq,
        .cmd = b->cmd,
        .type = type,
        .side = o->side,
        .reason = reason,
        .flags = flags,
        .order_id = o->id,
        .owner = o->owner,
        .price = o->price,
        .size = o->size,
        .remaining = remaining,
        .slots = {o->slots[0], o->slots[1], o->slots[2], o->slots[3]},
    };
}

static inline void emit_level(exos_book *b, exos_sink *s, const level_t *l) {
    exos_event *e = emit_slot(s);
    *e = (exos_event){
        .seq = ++b->seq,
        .cmd = b->cmd,
        .type = EXOS_EV_L2,
        .side = l->side,
        .price = l->price,
        .size = l->volume,
        .remaining = l->count,
    };
}

static inline void emit_fill(exos_book *b, exos_sink *s, const order_t *t, const order_t *m,
                             int64_t price, int64_t q) {
    exos_event *e = emit_slot(s);
    *e = (exos_event){
        .seq = ++b->seq,
        .cmd = b->cmd,
        .type = EXOS_EV_FILL,
        .side = t->side,
        .flags = (uint8_t)((m->remaining == 0 ? EXOS_EVF_MAKER_DONE : 0) |
                           (t->remaining == 0 ? EXOS_EVF_TAKER_DONE : 0)),
        .order_id = t->id,
        .owner = t->owner,
        .price = price,
        .size = q,
        .remaining = m->remaining,
        .maker_id = m->id,
        .maker_owner = m->owner,
        .trade_id = ++b->trade_id,
        .slots = {m->slots[0], m->slots[1], m->slots[2], m->slots[3]},
    };
}

/* A rejection changes nothing, not even the sequence: it carries the current one. */
static int reject(exos_book *b, exos_sink *s, uint8_t reason, uint64_t id, uint64_t owner,
                  uint8_t side, int64_t price, int64_t size) {
    exos_event *e = emit_slot(s);
    *e = (exos_event){
        .seq = b->seq,
        .cmd = b->cmd,
        .type = EXOS_EV_REJECTED,
        .side = side,
        .reason = reason,
        .order_id = id,
        .owner = owner,
        .price = price,
        .size = size,
    };
    return 0;
}

/* ---------------------------------------------------------------- hash tables */

static inline int table_has_room(uint32_t n, uint32_t mask) {
    return 2 * (uint64_t)n + 4 <= (uint64_t)mask + 1;
}

/* Tables stay at most half full, so probes stay short. */
static uint32_t table_size_for(uint32_t n) {
    uint32_t cap = 16;
    while (!table_has_room(n, cap - 1)) cap <<= 1;
    return cap;
}

static inline uint32_t id_find(const exos_book *b, uint64_t id) {
    uint32_t i = hash_u64(id) & b->id_mask;
    for (;;) {
        uint32_t v = b->ids[i];
        if (!v) return NIL;
        if (b->orders[v - 1].id == id) return v - 1;
        i = (i + 1) & b->id_mask;
    }
}

static inline void id_put(uint32_t *t, uint32_t mask, const order_t *orders, uint32_t oi) {
    uint32_t i = hash_u64(orders[oi].id) & mask;
    while (t[i]) i = (i + 1) & mask;
    t[i] = oi + 1;
}

static void id_del(exos_book *b, uint32_t oi) {
    uint32_t mask = b->id_mask, i = hash_u64(b->orders[oi].id) & mask;
    while (b->ids[i] != oi + 1) i = (i + 1) & mask;
    for (uint32_t j = i;;) {
        j = (j + 1) & mask;
        uint32_t v = b->ids[j];
        if (!v) break;
        uint32_t home = hash_u64(b->orders[v - 1].id) & mask;
        /* keep v where it is if its home lies cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
        b->ids[i] = v;
        i = j;
    }
    b->ids[i] = 0;
}

static int id_reserve(exos_book *b, uint32_t n) {
    if (table_has_room(n, b->id_mask)) return 1;
    uint32_t cap = table_size_for(n);
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return 0;
    for (uint32_t i = 0; i <= b->id_mask; ++i)
        if (b->ids[i]) id_put(t, cap - 1, b->orders, b->ids[i] - 1);
    free(b->ids);
    b->ids = t;
    b->id_mask = cap - 1;
    return 1;
}

static inline uint32_t cid_find(const exos_book *b, uint64_t owner, const uint8_t *cid) {
    uint32_t i = (uint32_t)client_id_hash(owner, cid) & b->cid_mask;
    for (;;) {
        uint32_t v = b->cids[i];
        if (!v) return NIL;
        const order_t *o = &b->orders[v - 1];
        if (o->owner == owner && memcmp(o->client_id, cid, EXOS_CLIENT_ID_LEN) == 0) return v - 1;
        i = (i + 1) & b->cid_mask;
    }
}

static inline void cid_put(uint32_t *t, uint32_t mask, const order_t *orders, uint32_t oi) {
    uint32_t i = (uint32_t)client_id_hash(orders[oi].owner, orders[oi].client_id) & mask;
    while (t[i]) i = (i + 1) & mask;
    t[i] = oi + 1;
}

static void cid_del(exos_book *b, uint32_t oi) {
    uint32_t mask = b->cid_mask;
    const order_t *o = &b->orders[oi];
    uint32_t i = (uint32_t)client_id_hash(o->owner, o->client_id) & mask;
    while (b->cids[i] != oi + 1) i = (i + 1) & mask;
    for (uint32_t j = i;;) {
        j = (j + 1) & mask;
        uint32_t v = b->cids[j];
        if (!v) break;
        const order_t *w = &b->orders[v - 1];
        uint32_t home = (uint32_t)client_id_hash(w->owner, w->client_id) & mask;
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
        b->cids[i] = v;
        i = j;
    }
    b->cids[i] = 0;
    b->n_cids--;
}

static int cid_reserve(exos_book *b, uint32_t n) {
    if (table_has_room(n, b->cid_mask)) return 1;
    uint32_t cap = table_size_for(n);
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return 0;
    for (uint32_t i = 0; i <= b->cid_mask; ++i)
        if (b->cids[i]) cid_put(t, cap - 1, b->orders, b->cids[i] - 1);
    free(b->cids);
    b->cids = t;
    b->cid_mask = cap - 1;
    return 1;
}

static inline owner_entry *owner_find(const exos_book *b, uint64_t owner) {
    uint32_t i = hash_u64(owner) & b->own_mask;
    for (;;) {
        owner_entry *e = &b->owners[i];
        if (!e->used) return NULL;
        if (e->owner == owner) return e;
        i = (i + 1) & b->own_mask;
    }
}

static owner_entry *owner_slot(owner_entry *t, uint32_t mask, uint64_t owner) {
    uint32_t i = hash_u64(owner) & mask;
    while (t[i].used && t[i].owner != owner) i = (i + 1) & mask;
    return &t[i];
}

static void owner_del(exos_book *b, owner_entry *e) {
    uint32_t mask = b->own_mask, i = (uint32_t)(e - b->owners);
    for (uint32_t j = i;;) {
        j = (j + 1) & mask;
        if (!b->owners[j].used) break;
        uint32_t home = hash_u64(b->owners[j].owner) & mask;
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
        b->owners[i] = b->owners[j];
        i = j;
    }
    memset(&b->owners[i], 0, sizeof b->owners[i]);
    b->n_owners--;
}

static int owner_reserve(exos_book *b, uint32_t n) {
    if (table_has_room(n, b->own_mask)) return 1;
    uint32_t cap = table_size_for(n);
    owner_entry *t = calloc(cap, sizeof *t);
    if (!t) return 0;
    for (uint32_t i = 0; i <= b->own_mask; ++i)
        if (b->owners[i].used) *owner_slot(t, cap - 1, b->owners[i].owner) = b->owners[i];
    free(b->owners);
    b->owners = t;
    b->own_mask = cap - 1;
    return 1;
}

/* Append an order to its owner's list (entry order: the newest entry is always the tail). */
static void owner_append(exos_book *b, uint32_t oi) {
    order_t *o = &b->orders[oi];
    owner_entry *e = owner_slot(b->owners, b->own_mask, o->owner);
    if (!e->used) {
        e->used = 1;
        e->owner = o->owner;
        e->head = e->tail = NIL;
        e->count = 0;
        b->n_owners++;
    }
    o->oprev = e->tail;
    o->onext = NIL;
    if (e->tail != NIL) b->orders[e->tail].onext = oi;
    else e->head = oi;
    e->tail = oi;
    e->count++;
}

static void owner_unlink(exos_book *b, uint32_t oi) {
    order_t *o = &b->orders[oi];
    owner_entry *e = owner_find(b, o->owner);
    if (o->oprev != NIL) b->orders[o->oprev].onext = o->onext;
    else e->head = o->onext;
    if (o->onext != NIL) b->orders[o->onext].oprev = o->oprev;
    else e->tail = o->oprev;
    if (--e->count == 0) owner_del(b, e);
}

/* ---------------------------------------------------------------- pools and sides */

static int order_pool_reserve(exos_book *b) {
    if (b->ofree != NIL || b->ohigh < b->ocap) return 1;
    /* the pool never holds more than max_orders resting orders plus one taker */
    uint64_t limit = (uint64_t)b->max_orders + 1;
    uint64_t cap = b->ocap ? (uint64_t)b->ocap * 2 : 64;
    if (cap > limit) cap = limit;
    if (cap <= b->ocap) return 0;
    order_t *o = realloc(b->orders, (size_t)cap * sizeof *o);
    if (!o) return 0;
    b->orders = o;
    b->ocap = (uint32_t)cap;
    return 1;
}

static inline uint32_t order_alloc(exos_book *b) {
    uint32_t oi;
    if (b->ofree != NIL) {
        oi = b->ofree;
        b->ofree = b->orders[oi].next;
    } else {
        oi = b->ohigh++;
    }
    return oi;
}

static inline void order_release(exos_book *b, uint32_t oi) {
    b->orders[oi].id = 0;
    b->orders[oi].next = b->ofree;
    b->ofree = oi;
}

static int level_pool_reserve(exos_book *b) {
    if (b->lfree != NIL || b->lhigh < b->lcap) return 1;
    uint64_t cap = b->lcap ? (uint64_t)b->lcap * 2 : 64;
    if (cap > (uint64_t)b->max_levels + 1) cap = (uint64_t)b->max_levels + 1;
    if (cap <= b->lcap) return 0;
    level_t *l = realloc(b->lvls, (size_t)cap * sizeof *l);
    if (!l) return 0;
    b->lvls = l;
    b->lcap = (uint32_t)cap;
    return 1;
}

static int side_reserve(side_index *s) {
    if (s->n < s->cap) return 1;
    uint32_t cap = s->cap ? s->cap * 2 : 64;
    int64_t *k = realloc(s->key, (size_t)cap * sizeof *k);
    if (!k) return 0;
    s->key = k;
    uint32_t *l = realloc(s->lvl, (size_t)cap * sizeof *l);
    if (!l) return 0;
    s->lvl = l;
    s->cap = cap;
    return 1;
}

/* Index of the first key >= key, branch-free (the comparisons are unpredictable). */
static inline uint32_t side_lower_bound(const side_index *s, int64_t key) {
    const int64_t *base = s->key;
    uint32_t n = s->n;
    if (n == 0) return 0;
    while (n > 1) {
        uint32_t half = n / 2;
        base = base[half] < key ? base + half : base;
        n -= half;
    }
    return (uint32_t)(base - s->key) + (*base < key);
}

/* The level at `price` on `side` or NIL; *pos gets where a new one would go. Most activity is at
 * the touch, the end of the array, so that is tried first. */
static inline uint32_t level_locate(const exos_book *b, int side, int64_t price, uint32_t *pos) {
    const side_index *s = &b->sides[side];
    int64_t key = LEVEL_KEY(side, price);
    if (s->n && s->key[s->n - 1] <= key) {
        *pos = s->n - (s->key[s->n - 1] == key);
        return s->key[s->n - 1] == key ? s->lvl[s->n - 1] : NIL;
    }
    uint32_t p = side_lower_bound(s, key);
    *pos = p;
    return p < s->n && s->key[p] == key ? s->lvl[p] : NIL;
}

static inline uint32_t level_find(const exos_book *b, int side, int64_t price) {
    uint32_t pos;
    return level_locate(b, side, price, &pos);
}

/* Create a level at insertion point `pos` (from level_locate, with the side unchanged since). */
static uint32_t level_create_at(exos_book *b, int side, int64_t price, uint32_t pos) {
    side_index *s = &b->sides[side];
    uint32_t li;
    if (b->lfree != NIL) {
        li = b->lfree;
        b->lfree = b->lvls[li].head;
    } else {
        li = b->lhigh++;
    }
    level_t *l = &b->lvls[li];
    l->price = price;
    l->volume = 0;
    l->head = l->tail = NIL;
    l->count = 0;
    l->side = (uint8_t)side;
    memmove(s->key + pos + 1, s->key + pos, (size_t)(s->n - pos) * sizeof *s->key);
    memmove(s->lvl + pos + 1, s->lvl + pos, (size_t)(s->n - pos) * sizeof *s->lvl);
    s->key[pos] = LEVEL_KEY(side, price);
    s->lvl[pos] = li;
    s->n++;
    b->n_levels++;
    return li;
}

static uint32_t level_create(exos_book *b, int side, int64_t price) {
    return level_create_at(b, side, price, side_lower_bound(&b->sides[side], LEVEL_KEY(side, price)));
}

static void level_drop(exos_book *b, uint32_t li) {
    level_t *l = &b->lvls[li];
    side_index *s = &b->sides[l->side];
    int64_t key = LEVEL_KEY(l->side, l->price);
    uint32_t pos = s->n - 1;
    if (s->key[pos] != key) {
        pos = side_lower_bound(s, key);
        memmove(s->key + pos, s->key + pos + 1, (size_t)(s->n - pos - 1) * sizeof *s->key);
        memmove(s->lvl + pos, s->lvl + pos + 1, (size_t)(s->n - pos - 1) * sizeof *s->lvl);
    }
    s->n--;
    b->n_levels--;
    l->head = b->lfree;
    b->lfree = li;
}

static inline void level_append(exos_book *b, uint32_t li, uint32_t oi) {
    level_t *l = &b->lvls[li];
    order_t *o = &b->orders[oi];
    o->level = li;
    o->prev = l->tail;
    o->next = NIL;
    if (l->tail != NIL) b->orders[l->tail].next = oi;
    else l->head = oi;
    l->tail = oi;
    l->count++;
    l->volume += o->remaining;
}

static inline void level_unlink(exos_book *b, uint32_t oi) {
    order_t *o = &b->orders[oi];
    level_t *l = &b->lvls[o->level];
    if (o->prev != NIL) b->orders[o->prev].next = o->next;
    else l->head = o->next;
    if (o->next != NIL) b->orders[o->next].prev = o->prev;
    else l->tail = o->prev;
    l->count--;
    l->volume -= o->remaining;
}

/* Put an order on its level's tail, creating the level if needed. */
static void order_rest(exos_book *b, uint32_t oi) {
    order_t *o = &b->orders[oi];
    uint32_t pos, li = level_locate(b, o->side, o->price, &pos);
    if (li == NIL) li = level_create_at(b, o->side, o->price, pos);
    level_append(b, li, oi);
}

/* Register a newly resting order in the id, client-id and owner tables. */
static void order_register(exos_book *b, uint32_t oi) {
    order_t *o = &b->orders[oi];
    id_put(b->ids, b->id_mask, b->orders, oi);
    if (o->flags & FLAG_HAS_CLIENT_ID) {
        cid_put(b->cids, b->cid_mask, b->orders, oi);
        b->n_cids++;
    }
    owner_append(b, oi);
    b->n_orders++;
}

/* Remove a registered order that is no longer in a level queue, and free its slot. */
static void order_forget(exos_book *b, uint32_t oi) {
    order_t *o = &b->orders[oi];
    id_del(b, oi);
    if (o->flags & FLAG_HAS_CLIENT_ID) cid_del(b, oi);
    owner_unlink(b, oi);
    b->n_orders--;
    order_release(b, oi);
}

/* Take a resting order off the book entirely, with its L2 event. */
static void order_remove_resting(exos_book *b, exos_sink *s, uint32_t oi) {
    uint32_t li = b->orders[oi].level;
    level_unlink(b, oi);
    emit_level(b, s, &b->lvls[li]);
    if (b->lvls[li].count == 0) level_drop(b, li);
    order_forget(b, oi);
}

static int reserve_slow(exos_book *b, int need_order, int need_client_id, int need_level) {
    if (need_order) {
        if (!order_pool_reserve(b)) return 0;
        if (!id_reserve(b, b->n_orders + 1)) return 0;
        if (!owner_reserve(b, b->n_owners + 1)) return 0;
    }
    if (need_client_id && !cid_reserve(b, b->n_cids + 1)) return 0;
    if (need_level) {
        if (!level_pool_reserve(b)) return 0;
        if (!side_reserve(&b->sides[0]) || !side_reserve(&b->sides[1])) return 0;
    }
    return 1;
}

/* Reserve everything one command may allocate: a pool slot, a level, table room. */
static inline int reserve(exos_book *b, int need_order, int need_client_id, int need_level) {
    int fast = (!need_order || ((b->ofree != NIL || b->ohigh < b->ocap) &&
                                table_has_room(b->n_orders + 1, b->id_mask) &&
                                table_has_room(b->n_owners + 1, b->own_mask))) &&
               (!need_client_id || table_has_room(b->n_cids + 1, b->cid_mask)) &&
               (!need_level || ((b->lfree != NIL || b->lhigh < b->lcap) &&
                                b->sides[0].n < b->sides[0].cap && b->sides[1].n < b->sides[1].cap));
    return fast || reserve_slow(b, need_order, need_client_id, need_level);
}

/* ---------------------------------------------------------------- matching */

static inline int crosses(int side, int64_t limit, int64_t level_price) {
    return side == EXOS_BUY ? level_price <= limit : level_price >= limit;
}

static inline int would_cross(const exos_book *b, int side, int64_t price) {
    const side_index *opp = &b->sides[side ^ 1];
    return opp->n && crosses(side, price, b->lvls[opp->lvl[opp->n - 1]].price);
}

/* Could a FOK be filled whole? Walks the crossing makers without changing anything. */
static int fok_fillable(const exos_book *b, const order_t *t) {
    const side_index *opp = &b->sides[t->side ^ 1];
    int64_t need = t->remaining;
    for (uint32_t k = opp->n; k-- > 0;) {
        const level_t *l = &b->lvls[opp->lvl[k]];
        if (!crosses(t->side, t->price, l->price)) return 0;
        for (uint32_t mi = l->head; mi != NIL; mi = b->orders[mi].next) {
            const order_t *m = &b->orders[mi];
            if (m->owner == t->owner) {
                if (t->stp == EXOS_STP_CANCEL_MAKER) continue;
                return 0;
            }
            if (m->remaining >= need) return 1;
            need -= m->remaining;
        }
    }
    return 0;
}

/* Match taker `ti` (not in any level) against the opposite side. Returns 0 if self-trade
 * prevention cancelled the taker, 1 otherwise. */
static int match(exos_book *b, exos_sink *s, uint32_t ti) {
    order_t *t = &b->orders[ti];
    side_index *opp = &b->sides[t->side ^ 1];
    while (t->remaining > 0 && opp->n) {
        uint32_t li = opp->lvl[opp->n - 1];
        level_t *l = &b->lvls[li];
        if (!crosses(t->side, t->price, l->price)) break;
        int64_t volume0 = l->volume;
        uint32_t count0 = l->count;
        int stopped = 0;
        uint32_t mi = l->head;
        while (mi != NIL && t->remaining > 0) {
            order_t *m = &b->orders[mi];
            uint32_t next = m->next;
            if (m->owner == t->owner) {
                if (t->stp != EXOS_STP_CANCEL_TAKER) {
                    emit_order(b, s, EXOS_EV_CANCELLED, EXOS_R_STP, 0, m, m->remaining);
                    level_unlink(b, mi);
                    order_forget(b, mi);
                }
                if (t->stp != EXOS_STP_CANCEL_MAKER) {
                    emit_order(b, s, EXOS_EV_CANCELLED, EXOS_R_STP, 0, t, t->remaining);
                    t->remaining = 0;
                    stopped = 1;
                    break;
                }
            } else {
                int64_t q = m->remaining < t->remaining ? m->remaining : t->remaining;
                m->remaining -= q;
                t->remaining -= q;
                l->volume -= q;
                emit_fill(b, s, t, m, l->price, q);
                if (m->remaining == 0) {
                    level_unlink(b, mi);
                    order_forget(b, mi);
                }
            }
            mi = next;
        }
        if (l->volume != volume0 || l->count != count0) emit_level(b, s, l);
        if (l->count == 0) level_drop(b, li);
        if (stopped) return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- commands */

static inline __attribute__((always_inline)) int place(exos_book *b, exos_sink *s, uint64_t id,
                                                       uint64_t owner, uint8_t side,
                 int64_t price, int64_t size, uint8_t tif, uint8_t flags, uint8_t stp,
                 int64_t expiry, const uint8_t *client_id, const uint64_t *slots) {
#define REJECT(r) return reject(b, s, (r), id, owner, side, price, size)
    if (side > EXOS_SELL) REJECT(EXOS_R_BAD_SIDE);
    if (tif > EXOS_FOK) REJECT(EXOS_R_BAD_TIF);
    if (stp > EXOS_STP_CANCEL_BOTH || (stp == EXOS_STP_CANCEL_BOTH && tif == EXOS_FOK))
        REJECT(EXOS_R_BAD_STP);
    if ((flags & ~EXOS_POST_ONLY) || ((flags & EXOS_POST_ONLY) && tif >= EXOS_IOC))
        REJECT(EXOS_R_BAD_FLAGS);
    if (price <= 0) REJECT(EXOS_R_BAD_PRICE);
    if (size <= 0) REJECT(EXOS_R_BAD_SIZE);
    if (mul_overflows(price, size)) REJECT(EXOS_R_OVERFLOW);
    if (tif == EXOS_GTD ? expiry <= 0 : expiry != 0) REJECT(EXOS_R_BAD_EXPIRY);
    if (id == 0) REJECT(EXOS_R_BAD_ID);
    if (id_find(b, id) != NIL) REJECT(EXOS_R_DUPLICATE_ID);
    if (client_id && cid_find(b, owner, client_id) != NIL) REJECT(EXOS_R_DUPLICATE_CLIENT_ID);
    if ((flags & EXOS_POST_ONLY) && would_cross(b, side, price))
        REJECT(EXOS_R_POST_ONLY_WOULD_CROSS);
    int rests = tif <= EXOS_GTD;
    uint32_t li = NIL, pos = 0;
    if (rests) {
        if (b->n_orders >= b->max_orders) REJECT(EXOS_R_ORDER_LIMIT);
        li = level_locate(b, side, price, &pos);
        if (li == NIL && b->n_levels >= b->max_levels) REJECT(EXOS_R_LEVEL_LIMIT);
        if (li != NIL && b->lvls[li].volume > INT64_MAX - size) REJECT(EXOS_R_OVERFLOW);
    }
#undef REJECT
    if (!reserve(b, 1, client_id != NULL, rests)) return EXOS_ENOMEM;

    /* FOK needs the order's fields for the simulation, so it is filled in before the check. */
    uint32_t ti = order_alloc(b);
    order_t *t = &b->orders[ti];
    t->id = id;
    t->owner = owner;
    t->price = price;
    t->size = size;
    t->remaining = size;
    t->expiry = expiry;
    if (slots) memcpy(t->slots, slots, sizeof t->slots);
    else memset(t->slots, 0, sizeof t->slots);
    if (client_id) memcpy(t->client_id, client_id, EXOS_CLIENT_ID_LEN);
    else memset(t->client_id, 0, EXOS_CLIENT_ID_LEN);
    t->side = side;
    t->tif = tif;
    t->flags = (uint8_t)(flags | (client_id ? FLAG_HAS_CLIENT_ID : 0));
    t->stp = stp;
    if (tif == EXOS_FOK && !fok_fillable(b, t)) {
        order_release(b, ti);
        return reject(b, s, EXOS_R_FOK_UNFILLABLE, id, owner, side, price, size);
    }

    emit_order(b, s, EXOS_EV_ACCEPTED, 0, 0, t, size);
    t->entry = ++b->entry;
    int alive = match(b, s, ti);
    t = &b->orders[ti];
    if (alive && t->remaining > 0) {
        if (rests) {
            /* the match only touched the other side, so the level and position found during
             * validation still hold */
            if (li == NIL) li = level_create_at(b, side, price, pos);
            level_append(b, li, ti);
            order_register(b, ti);
            emit_level(b, s, &b->lvls[li]);
            return 0;
        }
        emit_order(b, s, EXOS_EV_CANCELLED, EXOS_R_IOC_REMAINDER, 0, t, t->remaining);
    }
    order_release(b, ti);
    return 0;
}

static int cancel_index(exos_book *b, exos_sink *s, uint32_t oi, uint64_t owner, int expired,
                        uint64_t id_given) {
    if (oi == NIL) return reject(b, s, EXOS_R_UNKNOWN_ORDER, id_given, owner, 0, 0, 0);
    order_t *o = &b->orders[oi];
    if (owner != EXOS_ANY_OWNER && owner != o->owner)
        return reject(b, s, EXOS_R_NOT_OWNER, id_given, owner, 0, 0, 0);
    emit_order(b, s, expired ? EXOS_EV_EXPIRED : EXOS_EV_CANCELLED,
               expired ? EXOS_R_EXPIRY : EXOS_R_USER, 0, o, o->remaining);
    order_remove_resting(b, s, oi);
    return 0;
}

static int cancel_all(exos_book *b, exos_sink *s, uint64_t owner, int slot_index,
                      uint64_t slot_value) {
    owner_entry *e = owner_find(b, owner);
    if (!e) return 0;
    uint32_t oi = e->head;
    while (oi != NIL) {
        order_t *o = &b->orders[oi];
        uint32_t next = o->onext;
        if (slot_index < 0 || o->slots[slot_index] == slot_value) {
            emit_order(b, s, EXOS_EV_CANCELLED, EXOS_R_CANCEL_ALL, 0, o, o->remaining);
            order_remove_resting(b, s, oi);
        }
        oi = next;
    }
    return 0;
}

static int amend(exos_book *b, exos_sink *s, uint64_t id, uint64_t owner, int64_t price,
                 int64_t size) {
#define REJECT(r) return reject(b, s, (r), id, owner, 0, price, size)
    uint32_t oi = id_find(b, id);
    if (oi == NIL) REJECT(EXOS_R_UNKNOWN_ORDER);
    order_t *o = &b->orders[oi];
    if (owner != EXOS_ANY_OWNER && owner != o->owner) REJECT(EXOS_R_NOT_OWNER);
    if (price <= 0) REJECT(EXOS_R_BAD_PRICE);
    if (size <= 0) REJECT(EXOS_R_BAD_SIZE);
    if (mul_overflows(price, size)) REJECT(EXOS_R_OVERFLOW);
    if (price == o->price && size == o->size) REJECT(EXOS_R_NO_CHANGE);
    int64_t filled = o->size - o->remaining;
    if (size <= filled) {
        emit_order(b, s, EXOS_EV_CANCELLED, EXOS_R_AMENDED_BELOW_FILLED, 0, o, o->remaining);
        order_remove_resting(b, s, oi);
        return 0;
    }
    level_t *old = &b->lvls[o->level];
    if (price == o->price && size < o->size) {
        int64_t cut = o->size - size;
        o->size = size;
        o->remaining -= cut;
        old->volume -= cut;
        emit_order(b, s, EXOS_EV_AMENDED, 0, EXOS_EVF_PRIORITY_KEPT, o, o->remaining);
        emit_level(b, s, old);
        return 0;
    }
    int64_t remaining = size - filled;
    if ((o->flags & EXOS_POST_ONLY) && would_cross(b, o->side, price))
        REJECT(EXOS_R_POST_ONLY_WOULD_CROSS);
    uint32_t target = level_find(b, o->side, price);
    if (price != o->price && target == NIL &&
        b->n_levels - (old->count == 1 ? 1u : 0u) >= b->max_levels)
        REJECT(EXOS_R_LEVEL_LIMIT);
    if (target != NIL) {
        int64_t others = b->lvls[target].volume - (price == o->price ? o->remaining : 0);
        if (others > INT64_MAX - remaining) REJECT(EXOS_R_OVERFLOW);
    }
#undef REJECT
    if (!reserve(b, 0, 0, price != o->price)) return EXOS_ENOMEM;

    uint32_t li = o->level;
    level_unlink(b, oi);
    o->size = size;
    o->remaining = remaining;
    int64_t old_price = o->price;
    o->price = price;
    emit_order(b, s, EXOS_EV_AMENDED, 0, 0, o, remaining);
    o->entry = ++b->entry;
    owner_unlink(b, oi);
    owner_append(b, oi);
    if (price == old_price) {
        level_append(b, li, oi);
        emit_level(b, s, &b->lvls[li]);
        return 0;
    }
    emit_level(b, s, &b->lvls[li]);
    if (b->lvls[li].count == 0) level_drop(b, li);
    int alive = match(b, s, oi);
    o = &b->orders[oi];
    if (alive && o->remaining > 0) {
        order_rest(b, oi);
        emit_level(b, s, &b->lvls[o->level]);
        return 0;
    }
    /* filled whole or cancelled by self-trade prevention: the order leaves the book */
    order_forget(b, oi);
    return 0;
}

/* ---------------------------------------------------------------- public entry points */

exos_book *exos_book_new(uint32_t max_orders, uint32_t max_levels) {
    if (max_orders == 0 || max_levels == 0 || max_orders > EXOS_MAX_CAP || max_levels > EXOS_MAX_CAP)
        return NULL;
    exos_book *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->max_orders = max_orders;
    b->max_levels = max_levels;
    b->ofree = b->lfree = NIL;
    b->id_mask = b->cid_mask = b->own_mask = 15;
    b->ids = calloc(16, sizeof *b->ids);
    b->cids = calloc(16, sizeof *b->cids);
    b->owners = calloc(16, sizeof *b->owners);
    if (!b->ids || !b->cids || !b->owners) {
        exos_book_free(b);
        return NULL;
    }
    return b;
}

void exos_book_free(exos_book *b) {
    if (!b) return;
    free(b->orders);
    free(b->lvls);
    for (int k = 0; k < 2; ++k) {
        free(b->sides[k].key);
        free(b->sides[k].lvl);
    }
    free(b->ids);
    free(b->cids);
    free(b->owners);
    free(b);
}

void exos_book_set_sink(exos_book *b, exos_sink *s) { b->sink = s; }

int exos_book_place(exos_book *b, uint64_t id, uint64_t owner, uint8_t side,
                    int64_t price, int64_t size, uint8_t tif, uint8_t flags, uint8_t stp,
                    int64_t expiry, const char *client_id, const uint64_t *slots) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    b->cmd = 0;
    int r = place(b, s, id, owner, side, price, size, tif, flags, stp, expiry,
                  (const uint8_t *)client_id, slots);
    return r < 0 ? r : (int)s->len;
}

/* place() with the slots as scalars: from Python, four integer arguments cost less than an array. */
int exos_book_place4(exos_book *b, uint64_t id, uint64_t owner, uint8_t side, int64_t price,
                     int64_t size, uint8_t tif, uint8_t flags, uint8_t stp, int64_t expiry,
                     const char *client_id, uint64_t slot0, uint64_t slot1, uint64_t slot2,
                     uint64_t slot3) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    b->cmd = 0;
    const uint64_t slots[EXOS_N_SLOTS] = {slot0, slot1, slot2, slot3};
    int r = place(b, s, id, owner, side, price, size, tif, flags, stp, expiry,
                  (const uint8_t *)client_id, slots);
    return r < 0 ? r : (int)s->len;
}

int exos_book_limit(exos_book *b, uint64_t id, uint64_t owner, uint8_t side,
                    int64_t price, int64_t size) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    b->cmd = 0;
    int r = place(b, s, id, owner, side, price, size, EXOS_GTC, 0, EXOS_STP_CANCEL_MAKER, 0, NULL,
                  NULL);
    return r < 0 ? r : (int)s->len;
}

int exos_book_cancel(exos_book *b, uint64_t id, uint64_t owner, int expired) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    b->cmd = 0;
    cancel_index(b, s, id_find(b, id), owner, expired, id);
    return (int)s->len;
}

int exos_book_cancel_client_id(exos_book *b, uint64_t owner, const char *client_id,
                               int expired) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    b->cmd = 0;
    cancel_index(b, s, cid_find(b, owner, (const uint8_t *)client_id), owner, expired, 0);
    return (int)s->len;
}

int exos_book_cancel_all(exos_book *b, uint64_t owner, int slot_index,
                         uint64_t slot_value) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    b->cmd = 0;
    if (slot_index >= EXOS_N_SLOTS) return EXOS_EUNKNOWN;
    cancel_all(b, s, owner, slot_index, slot_value);
    return (int)s->len;
}

int exos_book_amend(exos_book *b, uint64_t id, uint64_t owner, int64_t price,
                    int64_t size) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    b->cmd = 0;
    int r = amend(b, s, id, owner, price, size);
    return r < 0 ? r : (int)s->len;
}

static int run_command(exos_book *b, exos_sink *s, const exos_cmd *c) {
    switch (c->op) {
    case EXOS_OP_PLACE:
        return place(b, s, c->id, c->owner, c->side, c->price, c->size, c->tif, c->flags, c->stp,
                     c->expiry, c->has_client_id ? c->client_id : NULL, c->slots);
    case EXOS_OP_CANCEL:
        return cancel_index(b, s, id_find(b, c->id), c->owner, c->expired, c->id);
    case EXOS_OP_CANCEL_CLIENT_ID:
        return cancel_index(b, s, cid_find(b, c->owner, c->client_id), c->owner, c->expired, 0);
    case EXOS_OP_CANCEL_ALL:
        if (c->slot_filter >= EXOS_N_SLOTS) return EXOS_EUNKNOWN;
        return cancel_all(b, s, c->owner, c->slot_filter, c->slots[0]);
    case EXOS_OP_AMEND:
        return amend(b, s, c->id, c->owner, c->price, c->size);
    default:
        return reject(b, s, EXOS_R_BAD_OP, c->id, c->owner, 0, 0, 0);
    }
}

int64_t exos_book_batch(exos_book *b, const exos_cmd *cmds, size_t n) {
    exos_sink *s = b->sink;
    if (!s) return EXOS_ENOSINK;
    s->len = 0;
    for (size_t i = 0; i < n; ++i) {
        b->cmd = (uint32_t)i;
        int r = run_command(b, s, &cmds[i]);
        if (r < 0) return r;
    }
    b->cmd = 0;
    return s->len;
}

/* ---------------------------------------------------------------- queries */

int64_t exos_book_best_price(const exos_book *b, int side) {
    const side_index *s = &b->sides[side & 1];
    return s->n ? b->lvls[s->lvl[s->n - 1]].price : 0;
}

int64_t exos_book_best_size(const exos_book *b, int side) {
    const side_index *s = &b->sides[side & 1];
    return s->n ? b->lvls[s->lvl[s->n - 1]].volume : 0;
}

uint32_t exos_book_depth(const exos_book *b, int side, uint32_t n, exos_level *out) {
    const side_index *s = &b->sides[side & 1];
    uint32_t k = 0;
    for (; k < n && k < s->n; ++k) {
        const level_t *l = &b->lvls[s->lvl[s->n - 1 - k]];
        out[k].price = l->price;
        out[k].size = l->volume;
        out[k].count = l->count;
        out[k].pad = 0;
    }
    return k;
}

static void order_info(const order_t *o, exos_order_info *out) {
    memset(out, 0, sizeof *out);
    out->id = o->id;
    out->owner = o->owner;
    out->price = o->price;
    out->size = o->size;
    out->remaining = o->remaining;
    out->expiry = o->expiry;
    out->entry = o->entry;
    memcpy(out->slots, o->slots, sizeof out->slots);
    memcpy(out->client_id, o->client_id, EXOS_CLIENT_ID_LEN);
    out->side = o->side;
    out->tif = o->tif;
    out->flags = o->flags & EXOS_POST_ONLY;
    out->stp = o->stp;
    out->has_client_id = (o->flags & FLAG_HAS_CLIENT_ID) != 0;
}

int exos_book_get(const exos_book *b, uint64_t id, exos_order_info *out) {
    uint32_t oi = id_find(b, id);
    if (oi == NIL) return 0;
    order_info(&b->orders[oi], out);
    return 1;
}

int exos_book_get_client_id(const exos_book *b, uint64_t owner, const char *client_id,
                            exos_order_info *out) {
    uint32_t oi = cid_find(b, owner, (const uint8_t *)client_id);
    if (oi == NIL) return 0;
    order_info(&b->orders[oi], out);
    return 1;
}

int exos_book_set_slot(exos_book *b, uint64_t id, int index, uint64_t value) {
    uint32_t oi = id_find(b, id);
    if (oi == NIL || index < 0 || index >= EXOS_N_SLOTS) return EXOS_EUNKNOWN;
    b->orders[oi].slots[index] = value;
    return 0;
}

/* An owner's open orders (those whose slot `slot_index` equals `slot_value`; -1: all), in entry order:
 * up to `cap` ids are written, and the number that match is returned. */
uint32_t exos_book_owner_orders(const exos_book *b, uint64_t owner, int slot_index,
                                uint64_t slot_value, uint64_t *ids, uint32_t cap) {
    if (slot_index >= EXOS_N_SLOTS) return 0;
    const owner_entry *e = owner_find(b, owner);
    if (!e) return 0;
    uint32_t n = 0;
    for (uint32_t oi = e->head; oi != NIL; oi = b->orders[oi].onext) {
        const order_t *o = &b->orders[oi];
        if (slot_index < 0 || o->slots[slot_index] == slot_value) {
            if (n < cap) ids[n] = o->id;
            n++;
        }
    }
    return n;
}

int exos_book_get_slot(const exos_book *b, uint64_t id, int index, uint64_t *value) {
    uint32_t oi = id_find(b, id);
    if (oi == NIL || index < 0 || index >= EXOS_N_SLOTS) return 0;
    *value = b->orders[oi].slots[index];
    return 1;
}

uint64_t exos_book_seq(const exos_book *b) { return b->seq; }
uint64_t exos_book_trade_id(const exos_book *b) { return b->trade_id; }
uint64_t exos_book_entry(const exos_book *b) { return b->entry; }
uint32_t exos_book_open_orders(const exos_book *b) { return b->n_orders; }
uint32_t exos_book_levels(const exos_book *b) { return b->n_levels; }
uint32_t exos_book_max_orders(const exos_book *b) { return b->max_orders; }
uint32_t exos_book_max_levels(const exos_book *b) { return b->max_levels; }

size_t exos_book_memory(const exos_book *b) {
    size_t m = sizeof *b;
    m += (size_t)b->ocap * sizeof(order_t) + (size_t)b->lcap * sizeof(level_t);
    for (int k = 0; k < 2; ++k) m += (size_t)b->sides[k].cap * (sizeof(int64_t) + sizeof(uint32_t));
    m += ((size_t)b->id_mask + 1 + (size_t)b->cid_mask + 1) * sizeof(uint32_t);
    m += ((size_t)b->own_mask + 1) * sizeof(owner_entry);
    return m;
}

/* ---------------------------------------------------------------- consistency check */

#define FAIL(text)                                                                                 \
    do {                                                                                           \
        snprintf(message, message_len, "%s", text);                                               \
        return EXOS_E_CORRUPT;                                                                     \
    } while (0)

int exos_book_check(const exos_book *b, char *message, size_t message_len) {
    char scratch[1];
    if (!message || !message_len) {
        message = scratch;
        message_len = sizeof scratch;
    }
    uint32_t orders = 0, with_client_id = 0;
    if (b->n_levels != b->sides[0].n + b->sides[1].n) FAIL("level count != side sizes");
    if (b->n_levels > b->max_levels) FAIL("more levels than max_levels");
    for (int side = 0; side < 2; ++side) {
        const side_index *s = &b->sides[side];
        for (uint32_t k = 0; k < s->n; ++k) {
            const level_t *l = &b->lvls[s->lvl[k]];
            if (k && s->key[k - 1] >= s->key[k]) FAIL("level keys not strictly ascending");
            if (l->side != side || s->key[k] != LEVEL_KEY(side, l->price)) FAIL("level key mismatch");
            if (l->price <= 0) FAIL("level price <= 0");
            if (l->count == 0 || l->head == NIL) FAIL("empty level kept");
            int64_t volume = 0;
            uint32_t count = 0, prev = NIL;
            uint64_t last_entry = 0;
            for (uint32_t oi = l->head; oi != NIL; oi = b->orders[oi].next) {
                const order_t *o = &b->orders[oi];
                if (o->prev != prev) FAIL("queue back link broken");
                if (o->level != s->lvl[k] || o->price != l->price || o->side != side)
                    FAIL("order not on its level");
                if (o->id == 0 || o->remaining <= 0 || o->remaining > o->size)
                    FAIL("order remaining out of range");
                if (o->tif > EXOS_GTD) FAIL("non-resting tif in book");
                if (o->entry <= last_entry || o->entry > b->entry) FAIL("entry order broken");
                last_entry = o->entry;
                if (id_find(b, o->id) != oi) FAIL("id map does not find order");
                if (o->flags & FLAG_HAS_CLIENT_ID) {
                    with_client_id++;
                    if (cid_find(b, o->owner, o->client_id) != oi) FAIL("client id map broken");
                }
                if (__builtin_add_overflow(volume, o->remaining, &volume)) FAIL("volume overflow");
                count++;
                prev = oi;
                if (count > b->max_orders) FAIL("queue cycle");
            }
            if (l->tail != prev) FAIL("level tail wrong");
            if (volume != l->volume) FAIL("level volume != sum of orders");
            if (count != l->count) FAIL("level count != number of orders");
            orders += count;
        }
    }
    if (orders != b->n_orders) FAIL("order count mismatch");
    if (with_client_id != b->n_cids) FAIL("client id count mismatch");
    const side_index *bids = &b->sides[0], *asks = &b->sides[1];
    if (bids->n && asks->n &&
        b->lvls[bids->lvl[bids->n - 1]].price >= b->lvls[asks->lvl[asks->n - 1]].price)
        FAIL("book crossed");
    uint32_t in_ids = 0, in_cids = 0, owned = 0, owners = 0;
    for (uint32_t i = 0; i <= b->id_mask; ++i) in_ids += b->ids[i] != 0;
    for (uint32_t i = 0; i <= b->cid_mask; ++i) in_cids += b->cids[i] != 0;
    if (in_ids != b->n_orders) FAIL("id map size mismatch");
    if (in_cids != b->n_cids) FAIL("client id map size mismatch");
    for (uint32_t i = 0; i <= b->own_mask; ++i) {
        const owner_entry *e = &b->owners[i];
        if (!e->used) continue;
        owners++;
        if (owner_find(b, e->owner) != e) FAIL("owner map does not find owner");
        uint32_t count = 0, prev = NIL;
        uint64_t last_entry = 0;
        for (uint32_t oi = e->head; oi != NIL; oi = b->orders[oi].onext) {
            const order_t *o = &b->orders[oi];
            if (o->owner != e->owner || o->oprev != prev) FAIL("owner list broken");
            if (o->entry <= last_entry) FAIL("owner list not in entry order");
            last_entry = o->entry;
            prev = oi;
            if (++count > b->n_orders) FAIL("owner list cycle");
        }
        if (count != e->count || e->tail != prev || count == 0) FAIL("owner list count wrong");
        owned += count;
    }
    if (owners != b->n_owners || owned != b->n_orders) FAIL("owner totals mismatch");
    if (!table_has_room(b->n_orders, b->id_mask) && b->n_orders) FAIL("id map over half full");
    return EXOS_OK;
}

/* ---------------------------------------------------------------- canonical dump and load */

size_t exos_book_dump_size(const exos_book *b) {
    return EXOS_DUMP_HEADER + (size_t)b->n_orders * EXOS_DUMP_RECORD;
}

size_t exos_book_dump(const exos_book *b, uint8_t *out, size_t cap) {
    size_t need = exos_book_dump_size(b);
    if (cap < need) return 0;
    memset(out, 0, need);
    memcpy(out, "EXOSBK01", 8);
    store32(out + 8, EXOS_DUMP_VERSION);
    store32(out + 12, b->max_orders);
    store32(out + 16, b->max_levels);
    store32(out + 20, b->n_orders);
    store64(out + 24, b->seq);
    store64(out + 32, b->trade_id);
    store64(out + 40, b->entry);
    uint8_t *p = out + EXOS_DUMP_HEADER;
    for (int side = 0; side < 2; ++side) {
        const side_index *s = &b->sides[side];
        for (uint32_t k = s->n; k-- > 0;) {
            for (uint32_t oi = b->lvls[s->lvl[k]].head; oi != NIL; oi = b->orders[oi].next) {
                const order_t *o = &b->orders[oi];
                store64(p, o->id);
                store64(p + 8, o->owner);
                store64(p + 16, (uint64_t)o->price);
                store64(p + 24, (uint64_t)o->size);
                store64(p + 32, (uint64_t)o->remaining);
                store64(p + 40, (uint64_t)o->expiry);
                store64(p + 48, o->entry);
                for (int j = 0; j < EXOS_N_SLOTS; ++j) store64(p + 56 + 8 * j, o->slots[j]);
                memcpy(p + 88, o->client_id, EXOS_CLIENT_ID_LEN);
                p[104] = o->side;
                p[105] = o->tif;
                p[106] = o->flags;
                p[107] = o->stp;
                p += EXOS_DUMP_RECORD;
            }
        }
    }
    return need;
}

#undef FAIL
#define FAIL(text)                                                                                 \
    do {                                                                                           \
        set_message(message, message_len, text);                                                   \
        free(sorted);                                                                              \
        exos_book_free(b);                                                                         \
        return NULL;                                                                               \
    } while (0)

typedef struct entry_ref {
    uint64_t entry;
    uint32_t order;
} entry_ref;

static int by_entry(const void *x, const void *y) {
    uint64_t a = ((const entry_ref *)x)->entry, c = ((const entry_ref *)y)->entry;
    return a < c ? -1 : a > c;
}

exos_book *exos_book_load(const uint8_t *data, size_t len, char *message, size_t message_len) {
    exos_book *b = NULL;
    entry_ref *sorted = NULL;
    if (len < EXOS_DUMP_HEADER) FAIL("snapshot shorter than its header");
    if (memcmp(data, "EXOSBK01", 8) != 0) FAIL("bad magic");
    if (load32(data + 8) != EXOS_DUMP_VERSION) FAIL("unknown format version");
    uint32_t max_orders = load32(data + 12), max_levels = load32(data + 16), n = load32(data + 20);
    if (max_orders == 0 || max_levels == 0 || max_orders > EXOS_MAX_CAP || max_levels > EXOS_MAX_CAP)
        FAIL("caps out of range");
    if ((len - EXOS_DUMP_HEADER) % EXOS_DUMP_RECORD || (len - EXOS_DUMP_HEADER) / EXOS_DUMP_RECORD != n)
        FAIL("length does not match the order count");
    if (n > max_orders) FAIL("more orders than max_orders");
    b = exos_book_new(max_orders, max_levels);
    if (!b) FAIL("out of memory");
    b->seq = load64(data + 24);
    b->trade_id = load64(data + 32);
    b->entry = load64(data + 40);
    sorted = malloc(((size_t)n + 1) * sizeof *sorted);
    if (!sorted) FAIL("out of memory");
    const uint8_t *p = data + EXOS_DUMP_HEADER;
    int last_side = 0;
    int64_t last_price = 0;
    uint64_t last_entry = 0;
    for (uint32_t i = 0; i < n; ++i, p += EXOS_DUMP_RECORD) {
        uint64_t id = load64(p), owner = load64(p + 8);
        int64_t price = (int64_t)load64(p + 16), size = (int64_t)load64(p + 24);
        int64_t remaining = (int64_t)load64(p + 32), expiry = (int64_t)load64(p + 40);
        uint64_t entry = load64(p + 48);
        uint8_t side = p[104], tif = p[105], flags = p[106], stp = p[107];
        if (load32(p + 108) != 0) FAIL("record padding not zero");
        if (id == 0) FAIL("order id 0");
        if (side > EXOS_SELL) FAIL("bad side");
        if (tif > EXOS_GTD) FAIL("resting order with tif IOC/FOK or unknown");
        if (stp > EXOS_STP_CANCEL_BOTH) FAIL("bad stp");
        if (flags & ~(EXOS_POST_ONLY | FLAG_HAS_CLIENT_ID)) FAIL("bad flags");
        if (price <= 0 || size <= 0 || mul_overflows(price, size)) FAIL("price or size out of range");
        if (remaining <= 0 || remaining > size) FAIL("remaining out of range");
        if (tif == EXOS_GTD ? expiry <= 0 : expiry != 0) FAIL("bad expiry");
        if (entry == 0 || entry > b->entry) FAIL("entry number out of range");
        if (!(flags & FLAG_HAS_CLIENT_ID)) {
            for (int j = 0; j < EXOS_CLIENT_ID_LEN; ++j)
                if (p[88 + j]) FAIL("client id bytes without the has-client-id flag");
        }
        if (side < last_side) FAIL("bids after asks");
        if (i && side == last_side) {
            int64_t worse = side == EXOS_BUY ? last_price - price : price - last_price;
            if (worse < 0) FAIL("levels out of order");
            if (worse == 0 && entry <= last_entry) FAIL("queue not in entry order");
        }
        if (side == EXOS_SELL && b->sides[0].n && price <= b->lvls[b->sides[0].lvl[b->sides[0].n - 1]].price)
            FAIL("book crossed");
        if (id_find(b, id) != NIL) FAIL("duplicate order id");
        if ((flags & FLAG_HAS_CLIENT_ID) && cid_find(b, owner, p + 88) != NIL)
            FAIL("duplicate client id");
        int new_level = !(i && side == last_side && price == last_price);
        if (new_level && b->n_levels >= max_levels) FAIL("more levels than max_levels");
        if (!reserve(b, 1, (flags & FLAG_HAS_CLIENT_ID) != 0, new_level)) FAIL("out of memory");
        uint32_t oi = order_alloc(b);
        order_t *o = &b->orders[oi];
        o->id = id;
        o->owner = owner;
        o->price = price;
        o->size = size;
        o->remaining = remaining;
        o->expiry = expiry;
        o->entry = entry;
        for (int j = 0; j < EXOS_N_SLOTS; ++j) o->slots[j] = load64(p + 56 + 8 * j);
        memcpy(o->client_id, p + 88, EXOS_CLIENT_ID_LEN);
        o->side = side;
        o->tif = tif;
        o->flags = flags;
        o->stp = stp;
        /* levels arrive best first: each new level is worse than all before it, so it is created
         * at the front of the ascending key array */
        if (new_level) level_create(b, side, price);
        uint32_t li = level_find(b, side, price);
        if (b->lvls[li].volume > INT64_MAX - remaining) FAIL("level volume overflows");
        level_append(b, li, oi);
        id_put(b->ids, b->id_mask, b->orders, oi);
        if (flags & FLAG_HAS_CLIENT_ID) {
            cid_put(b->cids, b->cid_mask, b->orders, oi);
            b->n_cids++;
        }
        b->n_orders++;
        sorted[i].entry = entry;
        sorted[i].order = oi;
        last_side = side;
        last_price = price;
        last_entry = entry;
    }
    /* owner lists are in entry order; entry numbers are unique book-wide */
    qsort(sorted, n, sizeof *sorted, by_entry);
    for (uint32_t i = 0; i < n; ++i) {
        if (i && sorted[i].entry == sorted[i - 1].entry) FAIL("duplicate entry number");
        if (!owner_reserve(b, b->n_owners + 1)) FAIL("out of memory");
        owner_append(b, sorted[i].order);
    }
    free(sorted);
    return b;
}
