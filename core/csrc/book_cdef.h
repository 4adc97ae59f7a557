/* exos order book: the declarations shared by the C sources and ffi.cdef().
 *
 * This file is read by the C compiler (through book.h) and by cffi's parser, so it holds
 * declarations only: no preprocessor lines and no expressions in constants.
 * Semantics: docs/book.md.
 */

enum {
    EXOS_BUY = 0,
    EXOS_SELL = 1,

    EXOS_GTC = 0,
    EXOS_GTD = 1,
    EXOS_IOC = 2,
    EXOS_FOK = 3,

    EXOS_POST_ONLY = 1,

    EXOS_STP_CANCEL_MAKER = 0,
    EXOS_STP_CANCEL_TAKER = 1,
    EXOS_STP_CANCEL_BOTH = 2,

    EXOS_EV_ACCEPTED = 1,
    EXOS_EV_REJECTED = 2,
    EXOS_EV_FILL = 3,
    EXOS_EV_CANCELLED = 4,
    EXOS_EV_EXPIRED = 5,
    EXOS_EV_AMENDED = 6,
    EXOS_EV_L2 = 7,

    EXOS_EVF_MAKER_DONE = 1,
    EXOS_EVF_TAKER_DONE = 2,
    EXOS_EVF_PRIORITY_KEPT = 4,

    EXOS_R_NONE = 0,
    EXOS_R_BAD_SIDE = 1,
    EXOS_R_BAD_TIF = 2,
    EXOS_R_BAD_STP = 3,
    EXOS_R_BAD_FLAGS = 4,
    EXOS_R_BAD_PRICE = 5,
    EXOS_R_BAD_SIZE = 6,
    EXOS_R_OVERFLOW = 7,
    EXOS_R_BAD_EXPIRY = 8,
    EXOS_R_BAD_ID = 9,
    EXOS_R_DUPLICATE_ID = 10,
    EXOS_R_DUPLICATE_CLIENT_ID = 11,
    EXOS_R_POST_ONLY_WOULD_CROSS = 12,
    EXOS_R_ORDER_LIMIT = 13,
    EXOS_R_LEVEL_LIMIT = 14,
    EXOS_R_FOK_UNFILLABLE = 15,
    EXOS_R_UNKNOWN_ORDER = 16,
    EXOS_R_NOT_OWNER = 17,
    EXOS_R_NO_CHANGE = 18,
    EXOS_R_BAD_OP = 19,
    EXOS_R_USER = 32,
    EXOS_R_EXPIRY = 33,
    EXOS_R_STP = 34,
    EXOS_R_IOC_REMAINDER = 35,
    EXOS_R_AMENDED_BELOW_FILLED = 36,
    EXOS_R_CANCEL_ALL = 37,

    EXOS_OP_PLACE = 0,
    EXOS_OP_CANCEL = 1,
    EXOS_OP_CANCEL_CLIENT_ID = 2,
    EXOS_OP_CANCEL_ALL = 3,
    EXOS_OP_AMEND = 4,

    EXOS_N_SLOTS = 4,
    EXOS_CLIENT_ID_LEN = 16,
    EXOS_DUMP_HEADER = 48,
    EXOS_DUMP_RECORD = 112,
    EXOS_DUMP_VERSION = 1,
    EXOS_MAX_CAP = 1073741824,

    EXOS_ENOMEM = -1,
    EXOS_EUNKNOWN = -2,
    EXOS_ENOSINK = -3,

    EXOS_OK = 0,
    EXOS_E_SNAPSHOT = 1,
    EXOS_E_CORRUPT = 2
};

/* One thing the book did. Fields a type does not use are zero (docs/book.md, Events). */
typedef struct exos_event {
    uint64_t seq;
    uint32_t cmd;
    uint8_t type;
    uint8_t side;
    uint8_t reason;
    uint8_t flags;
    uint64_t order_id;
    uint64_t owner;
    int64_t price;
    int64_t size;
    int64_t remaining;
    uint64_t maker_id;
    uint64_t maker_owner;
    uint64_t trade_id;
    uint64_t slots[4];
} exos_event;

/* Where events go: owned by the caller and bound to a book with exos_book_set_sink (one sink may
 * serve many books); every command call overwrites it from index 0. The book grows it when one call
 * needs more room. */
typedef struct exos_sink {
    exos_event *ev;
    uint32_t len;
    uint32_t cap;
} exos_sink;

/* One command of a batch. */
typedef struct exos_cmd {
    uint8_t op;
    uint8_t side;
    uint8_t tif;
    uint8_t flags;
    uint8_t stp;
    uint8_t expired;
    uint8_t has_client_id;
    int8_t slot_filter;
    uint64_t id;
    uint64_t owner;
    int64_t price;
    int64_t size;
    int64_t expiry;
    uint64_t slots[4];
    uint8_t client_id[16];
} exos_cmd;

/* An open order as the book holds it. */
typedef struct exos_order_info {
    uint64_t id;
    uint64_t owner;
    int64_t price;
    int64_t size;
    int64_t remaining;
    int64_t expiry;
    uint64_t entry;
    uint64_t slots[4];
    uint8_t client_id[16];
    uint8_t side;
    uint8_t tif;
    uint8_t flags;
    uint8_t stp;
    uint8_t has_client_id;
    uint8_t pad[3];
} exos_order_info;

typedef struct exos_level {
    int64_t price;
    int64_t size;
    uint32_t count;
    uint32_t pad;
} exos_level;

typedef struct exos_book exos_book;

exos_book *exos_book_new(uint32_t max_orders, uint32_t max_levels);
void exos_book_free(exos_book *book);
exos_sink *exos_sink_new(uint32_t cap);
void exos_sink_free(exos_sink *sink);
void exos_book_set_sink(exos_book *book, exos_sink *sink);

int exos_book_place(exos_book *book, uint64_t id, uint64_t owner, uint8_t side,
                    int64_t price, int64_t size, uint8_t tif, uint8_t flags, uint8_t stp,
                    int64_t expiry, const char *client_id, const uint64_t *slots);
int exos_book_place4(exos_book *book, uint64_t id, uint64_t owner, uint8_t side, int64_t price,
                     int64_t size, uint8_t tif, uint8_t flags, uint8_t stp, int64_t expiry,
                     const char *client_id, uint64_t slot0, uint64_t slot1, uint64_t slot2,
                     uint64_t slot3);
int exos_book_limit(exos_book *book, uint64_t id, uint64_t owner, uint8_t side,
                    int64_t price, int64_t size);
int exos_book_cancel(exos_book *book, uint64_t id, uint64_t owner, int expired);
int exos_book_cancel_client_id(exos_book *book, uint64_t owner,
                               const char *client_id, int expired);
int exos_book_cancel_all(exos_book *book, uint64_t owner, int slot_index,
                         uint64_t slot_value);
int exos_book_amend(exos_book *book, uint64_t id, uint64_t owner, int64_t price,
                    int64_t size);
int64_t exos_book_batch(exos_book *book, const exos_cmd *cmds, size_t n);

int64_t exos_book_best_price(const exos_book *book, int side);
int64_t exos_book_best_size(const exos_book *book, int side);
uint32_t exos_book_depth(const exos_book *book, int side, uint32_t n, exos_level *out);
int exos_book_get(const exos_book *book, uint64_t id, exos_order_info *out);
int exos_book_get_client_id(const exos_book *book, uint64_t owner, const char *client_id,
                            exos_order_info *out);
int exos_book_set_slot(exos_book *book, uint64_t id, int index, uint64_t value);
int exos_book_get_slot(const exos_book *book, uint64_t id, int index, uint64_t *value);
uint32_t exos_book_owner_orders(const exos_book *book, uint64_t owner, int slot_index,
                                uint64_t slot_value, uint64_t *ids, uint32_t cap);

uint64_t exos_book_seq(const exos_book *book);
uint64_t exos_book_trade_id(const exos_book *book);
uint64_t exos_book_entry(const exos_book *book);
uint32_t exos_book_open_orders(const exos_book *book);
uint32_t exos_book_levels(const exos_book *book);
uint32_t exos_book_max_orders(const exos_book *book);
uint32_t exos_book_max_levels(const exos_book *book);
size_t exos_book_memory(const exos_book *book);

int exos_book_check(const exos_book *book, char *message, size_t message_len);
size_t exos_book_dump_size(const exos_book *book);
size_t exos_book_dump(const exos_book *book, uint8_t *out, size_t cap);
exos_book *exos_book_load(const uint8_t *data, size_t len, char *message, size_t message_len);
