/* exos order book: public C API. The declarations live in book_cdef.h, which cffi also reads. */
#ifndef EXOS_BOOK_H
#define EXOS_BOOK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "book_cdef.h"

#define EXOS_ANY_OWNER UINT64_MAX

#ifdef __cplusplus
}
#endif

#endif /* EXOS_BOOK_H */
