/*
 * bench_exposer.c: a native exposer for bench.rb and the mixed-language
 * test. It writes 64-byte (or size-byte) states through an assignment (sink)
 * on a pthread of its own, so the Ruby observer is measured against a
 * producer that does not compete for the GVL.
 *
 * It calls the library through function pointers taken from the copy Ruby
 * already loaded (linking it against libhakuban could load a second copy,
 * with a second Go runtime). Not part of the gem.
 *
 *   cc -O2 -shared -fPIC -pthread -o bench_exposer.so bench_exposer.c
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int32_t (*state_new_fn)(uint64_t *out, const int64_t *version, size_t version_len,
                                const char *const *format, size_t format_len, const void *data,
                                size_t data_len);
typedef int32_t (*sink_send_fn)(uint64_t sink, uint64_t state);
typedef int32_t (*state_drop_fn)(uint64_t state);

static state_new_fn state_new;
static sink_send_fn sink_send;
static state_drop_fn state_drop;
static uint64_t sink_handle;
static size_t data_size;
static uint64_t per_second;
static pthread_t thread;
static atomic_int stopping;
static atomic_llong sent;
static int running;

static void *run(void *arg) {
    (void)arg;
    char *data = malloc(data_size ? data_size : 1);
    if (data == NULL) return NULL;
    memset(data, 'x', data_size);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!atomic_load(&stopping)) {
        uint64_t st = 0;
        if (state_new(&st, NULL, 0, NULL, 0, data, data_size) != 0) break;
        int32_t rc = sink_send(sink_handle, st);
        state_drop(st);
        if (rc != 0) break; /* revoked (or closed): stop producing */
        long long n = atomic_fetch_add(&sent, 1) + 1;
        if (per_second > 0) { /* pace: never ahead of n / per_second */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double ahead = (double)n / (double)per_second -
                           ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9);
            if (ahead > 0) {
                struct timespec d = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
                nanosleep(&d, NULL);
            }
        }
    }
    free(data);
    return NULL;
}

/* Starts writing through sink; per_second 0 means as fast as possible. */
int bench_exposer_start(void *new_fn, void *send_fn, void *drop_fn, uint64_t sink, size_t size,
                        uint64_t rate) {
    if (running) return -1;
    state_new = (state_new_fn)new_fn;
    sink_send = (sink_send_fn)send_fn;
    state_drop = (state_drop_fn)drop_fn;
    sink_handle = sink;
    data_size = size;
    per_second = rate;
    atomic_store(&stopping, 0);
    atomic_store(&sent, 0);
    if (pthread_create(&thread, NULL, run, NULL) != 0) return -1;
    running = 1;
    return 0;
}

/* Stops the thread and returns how many states it sent. */
long long bench_exposer_stop(void) {
    if (!running) return -1;
    atomic_store(&stopping, 1);
    pthread_join(thread, NULL);
    running = 0;
    return atomic_load(&sent);
}
