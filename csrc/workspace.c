/*
 * workspace.c: a small cache of the kernels' large scratch buffers.
 *
 * A Winograd or GEMM convolution needs tens of MiB of workspace for a few
 * milliseconds. Taken from malloc and freed on every call, glibc gives such
 * blocks back to the kernel (munmap, or a heap trim), so the next call
 * page-faults every page again: on the development VM that was a quarter of
 * the time of a 1-thread resnet_c4 weight gradient. So freed workspaces are
 * kept in FC_WS_SLOTS slots and handed to the next call that fits.
 *
 * Layout of a block: malloc'd raw memory, then a header just before the
 * 64-byte aligned pointer the caller sees (the raw pointer and the usable
 * capacity). A call takes a cached block that fits it without being more than
 * four times too large (so a small GEMM buffer does not hold on to a large
 * Winograd one). The slots hold caller pointers and are taken and filled with
 * atomic exchanges, so concurrent calls from several Python threads (the GIL
 * is released) never share a block: a call that finds no block allocates
 * its own. What the cache keeps is bounded: FC_WS_SLOTS blocks, none larger
 * than FC_WS_MAX_CACHED; fc_workspace_release frees them all.
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

#define FC_WS_SLOTS 4
/* Blocks above this are freed, never cached (bytes). */
#define FC_WS_MAX_CACHED ((size_t)256 << 20)
/* Capacities are rounded up to this granule, so slightly different sizes of
 * the same layer share a block. */
#define FC_WS_GRANULE ((size_t)1 << 16)

typedef struct {
    void *raw;
    size_t cap;
} ws_hdr;

static void *volatile g_slots[FC_WS_SLOTS];

#if FC_HAVE_ATOMICS
static void *ws_xchg(void *volatile *slot, void *v)
{
    return fc_atomic_xchg_ptr(slot, v);
}
static int ws_put_if_empty(void *volatile *slot, void *v)
{
    return fc_atomic_cas0_ptr(slot, v);
}
#elif defined(_OPENMP)
/* No atomics known to this compiler (MSVC, the portable proxy build): the
 * slots under one named critical section, which any thread may enter. */
static void *ws_xchg(void *volatile *slot, void *v)
{
    void *old;
    FC_PRAGMA(omp critical(fc_ws_slots))
    {
        old = *slot;
        *slot = v;
    }
    return old;
}
static int ws_put_if_empty(void *volatile *slot, void *v)
{
    int put = 0;
    FC_PRAGMA(omp critical(fc_ws_slots))
    {
        if (*slot == NULL) {
            *slot = v;
            put = 1;
        }
    }
    return put;
}
#else
/* Neither atomics nor OpenMP: no cache (every block is malloc'd). */
static void *ws_xchg(void *volatile *slot, void *v) { (void)slot; (void)v; return NULL; }
static int ws_put_if_empty(void *volatile *slot, void *v) { (void)slot; (void)v; return 0; }
#endif

static ws_hdr *ws_header(void *p) { return (ws_hdr *)p - 1; }

static void ws_release_block(void *p)
{
    if (p != NULL) free(ws_header(p)->raw);
}

/* 64-byte aligned workspace of at least `bytes` bytes, or NULL. */
void *fc_ws_alloc(size_t bytes)
{
    if (bytes == 0) bytes = 1;
    for (int i = 0; i < FC_WS_SLOTS; i++) {
        void *p = g_slots[i] != NULL ? ws_xchg(&g_slots[i], NULL) : NULL;
        if (p == NULL) continue;
        const size_t cap = ws_header(p)->cap;
        if (cap >= bytes && cap / 4 <= bytes) return p;
        if (cap > bytes) {
            /* much larger than this call needs: keep it for the call it fits */
            if (!ws_put_if_empty(&g_slots[i], p)) ws_release_block(p);
            continue;
        }
        /* too small for this call: it would only be taken again in vain */
        ws_release_block(p);
    }
    if (bytes > SIZE_MAX - FC_WS_GRANULE - 64 - sizeof(ws_hdr)) return NULL;
    const size_t cap = (bytes + FC_WS_GRANULE - 1) / FC_WS_GRANULE * FC_WS_GRANULE;
    char *raw = (char *)malloc(cap + 64 + sizeof(ws_hdr));
    if (raw == NULL) return NULL;
    /* the header fits in the gap: aligned >= raw + sizeof(ws_hdr) */
    char *p = (char *)(((uintptr_t)raw + sizeof(ws_hdr) + 63) & ~(uintptr_t)63);
    ws_header(p)->raw = raw;
    ws_header(p)->cap = cap;
    return p;
}

/* Give back a block from fc_ws_alloc (NULL is ignored): cached when a slot is
 * free and the block is not huge, else freed. */
void fc_ws_free(void *p)
{
    if (p == NULL) return;
    if (ws_header(p)->cap <= FC_WS_MAX_CACHED)
        for (int i = 0; i < FC_WS_SLOTS; i++)
            if (ws_put_if_empty(&g_slots[i], p)) return;
    ws_release_block(p);
}

/* Free every cached block; returns the bytes released (capacities). */
size_t fc_workspace_release(void)
{
    size_t total = 0;
    for (int i = 0; i < FC_WS_SLOTS; i++) {
        void *p = ws_xchg(&g_slots[i], NULL);
        if (p != NULL) {
            total += ws_header(p)->cap;
            ws_release_block(p);
        }
    }
    return total;
}

/* Bytes held by the cache now (capacities). Each block is taken out of its
 * slot while it is measured, so a racing call can never free it under us
 * (it then simply finds that slot empty). */
size_t fc_workspace_cached(void)
{
    size_t total = 0;
    for (int i = 0; i < FC_WS_SLOTS; i++) {
        void *p = ws_xchg(&g_slots[i], NULL);
        if (p == NULL) continue;
        total += ws_header(p)->cap;
        if (!ws_put_if_empty(&g_slots[i], p)) fc_ws_free(p);
    }
    return total;
}
