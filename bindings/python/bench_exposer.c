/*
 * bench_exposer.c - a native "fast exposer" for bench.py.
 *
 * A Python exposer thread in the observer's process would share the GIL
 * with the observer, and with latest-wins the observer could take at most
 * one state per GIL hand-over: the benchmark would measure the GIL. So the
 * exposer that feeds the observer runs here, on its own native thread,
 * writing 64-byte states as fast as the library takes them.
 *
 * bench.py compiles this file with the C compiler cgo uses anyway and calls
 * it through ctypes. The library's functions are passed in as pointers (the
 * ones ctypes already loaded), so this file links against nothing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef int32_t (*state_new_fn)(uint64_t *out, const int64_t *version, size_t version_len,
                                const char *const *format, size_t format_len,
                                const void *data, size_t data_len);
typedef int32_t (*sink_send_fn)(uint64_t sink, uint64_t state);
typedef int32_t (*state_drop_fn)(uint64_t state);

static state_new_fn state_new;
static sink_send_fn sink_send;
static state_drop_fn state_drop;
static uint64_t the_sink;
static size_t data_len;
static atomic_int stop;
static atomic_uint_fast64_t sent;
static atomic_int last_error;
static pthread_t thread;
static uint64_t interval_ns; /* 0: as fast as possible */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *run(void *arg) {
    (void)arg;
    char data[4096];
    memset(data, 'x', sizeof data);
    uint64_t next = now_ns();
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (interval_ns) {
            /* Paced: spin (never sleep: a sleep is ~50 us) until it is time. */
            next += interval_ns;
            while (now_ns() < next && !atomic_load_explicit(&stop, memory_order_relaxed)) {
            }
        }
        uint64_t st;
        int32_t rc = state_new(&st, NULL, 0, NULL, 0, data, data_len);
        if (rc == 0) {
            rc = sink_send(the_sink, st);
            state_drop(st);
        }
        if (rc != 0) {
            atomic_store(&last_error, rc);
            break;
        }
        atomic_fetch_add_explicit(&sent, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Starts the exposer thread writing states of len bytes (<= 4096) to sink,
 * rate states per second (0: as fast as possible). */
int bench_exposer_start(void *new_fn, void *send_fn, void *drop_fn, uint64_t sink, size_t len,
                        uint64_t rate) {
    interval_ns = rate ? 1000000000u / rate : 0;
    state_new = (state_new_fn)new_fn;
    sink_send = (sink_send_fn)send_fn;
    state_drop = (state_drop_fn)drop_fn;
    the_sink = sink;
    data_len = len > 4096 ? 4096 : len;
    atomic_store(&stop, 0);
    atomic_store(&sent, 0);
    atomic_store(&last_error, 0);
    return pthread_create(&thread, NULL, run, NULL);
}

/* Stops the thread; returns how many states it sent (negative: an error code). */
int64_t bench_exposer_stop(void) {
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    int err = atomic_load(&last_error);
    return err ? (int64_t)err : (int64_t)atomic_load(&sent);
}
