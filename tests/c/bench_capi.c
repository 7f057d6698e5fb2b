/*
 * bench_capi.c — costs of the C API as a C program sees them (`make bench-c`).
 * Each benchmark runs 3 times; the median is reported.
 *
 *   try_next_empty          try_next on a stream with nothing pending
 *                           (target <= 150 ns)
 *   try_next_empty_fd       the same with the stream's fd open
 *   send_64B                hakuban_object_state_sink_send of a 64-byte state
 *   send_recv_64B           send + try_next + data + drop, one object
 *   recv_64B_batch          receive only: 1000 observers each with a pending
 *                           64-byte state, drained with try_next + data +
 *                           drop (target <= 500 ns/state)
 *   recv_64B_tag_batch      the same through one tag observer (each event
 *                           also carries a descriptor handle)
 *   recv_1MB_copy           send + try_next + data_copy into a caller buffer
 *                           + drop of a 1 MiB state (throughput)
 *   recv_1MB_pointer        the same with the pointer accessor (one malloc +
 *                           copy per state, for comparison)
 */
#include <pthread.h>

#include "testutil.h"

static volatile uint64_t sink_hole; /* defeats dead-code elimination */

typedef double (*bench_fn)(void); /* returns ns per operation */

static hakuban_exchange ex;

/* ---- try_next on an empty stream ---- */

static double try_next_empty_impl(bool with_fd) {
    hakuban_object_descriptor d = make_object("\"empty\"", NULL);
    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_observe_contract_new(&obs, ex, d));
    if (with_fd) {
        int fd;
        OK(hakuban_object_observe_contract_fd(&fd, obs));
    }
    const long n = 5000000;
    hakuban_object_state st;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (hakuban_object_observe_contract_try_next(&st, obs) != HAKUBAN_EMPTY) abort();
    }
    double ns = (double)(now_ns() - t0) / n;
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_descriptor_drop(d));
    return ns;
}
static double try_next_empty(void) { return try_next_empty_impl(false); }
static double try_next_empty_fd(void) { return try_next_empty_impl(true); }

/* ---- 64-byte states, one object ---- */

struct pair {
    hakuban_object_descriptor d;
    hakuban_object_observe_contract obs;
    hakuban_object_expose_contract exp;
    hakuban_object_state_sink sink;
};

static void pair_open(struct pair *p, const char *json) {
    p->d = make_object(json, NULL);
    OK(hakuban_object_observe_contract_new(&p->obs, ex, p->d));
    OK(hakuban_object_expose_contract_new(&p->exp, ex, p->d, 1));
    p->sink = expect_sink(p->exp);
}

static void pair_close(struct pair *p) {
    OK(hakuban_object_state_sink_drop(p->sink));
    OK(hakuban_object_expose_contract_drop(p->exp));
    OK(hakuban_object_observe_contract_drop(p->obs));
    OK(hakuban_object_descriptor_drop(p->d));
}

static hakuban_object_state unversioned(size_t size) {
    char *data = calloc(1, size);
    hakuban_object_state st = 0;
    OK(hakuban_object_state_new(&st, NULL, 0, NULL, 0, data, size));
    free(data);
    return st;
}

static double send_64B(void) {
    struct pair p;
    pair_open(&p, "\"send\"");
    hakuban_object_state st = unversioned(64);
    const long n = 1000000;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) OK(hakuban_object_state_sink_send(p.sink, st));
    double ns = (double)(now_ns() - t0) / n;
    OK(hakuban_object_state_drop(st));
    pair_close(&p);
    return ns;
}

static double send_recv_64B(void) {
    struct pair p;
    pair_open(&p, "\"sendrecv\"");
    hakuban_object_state st = unversioned(64);
    const long n = 1000000;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        OK(hakuban_object_state_sink_send(p.sink, st));
        hakuban_object_state got;
        OK(hakuban_object_observe_contract_try_next(&got, p.obs));
        const void *data;
        size_t len;
        OK(hakuban_object_state_data(&data, &len, got));
        sink_hole += ((const unsigned char *)data)[len - 1];
        OK(hakuban_object_state_drop(got));
    }
    double ns = (double)(now_ns() - t0) / n;
    OK(hakuban_object_state_drop(st));
    pair_close(&p);
    return ns;
}

/* ---- receive in batch ---- */

enum { BATCH = 1000, ROUNDS = 200 };

static double recv_64B_batch(void) {
    static struct pair ps[BATCH];
    for (int i = 0; i < BATCH; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"batch\":%d}", i);
        pair_open(&ps[i], json);
    }
    hakuban_object_state st = unversioned(64);
    int64_t spent = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BATCH; i++) OK(hakuban_object_state_sink_send(ps[i].sink, st));
        int64_t t0 = now_ns();
        for (int i = 0; i < BATCH; i++) {
            hakuban_object_state got;
            OK(hakuban_object_observe_contract_try_next(&got, ps[i].obs));
            const void *data;
            size_t len;
            OK(hakuban_object_state_data(&data, &len, got));
            sink_hole += ((const unsigned char *)data)[len - 1];
            OK(hakuban_object_state_drop(got));
        }
        spent += now_ns() - t0;
    }
    OK(hakuban_object_state_drop(st));
    for (int i = 0; i < BATCH; i++) pair_close(&ps[i]);
    return (double)spent / ((double)BATCH * ROUNDS);
}

static double recv_64B_tag_batch(void) {
    hakuban_tag_descriptor tag = make_tag("\"bench\"");
    hakuban_tag_observe_contract tobs = 0;
    OK(hakuban_tag_observe_contract_new(&tobs, ex, tag));
    static hakuban_object_descriptor ds[BATCH];
    static hakuban_object_expose_contract exps[BATCH];
    static hakuban_object_state_sink sinks[BATCH];
    for (int i = 0; i < BATCH; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"tagbatch\":%d}", i);
        ds[i] = make_object(json, "\"bench\"");
        OK(hakuban_object_expose_contract_new(&exps[i], ex, ds[i], 1));
        sinks[i] = expect_sink(exps[i]); /* exposed + tag observed = live */
    }
    hakuban_object_state st = unversioned(64);
    int64_t spent = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BATCH; i++) OK(hakuban_object_state_sink_send(sinks[i], st));
        int64_t t0 = now_ns();
        for (int i = 0; i < BATCH; i++) {
            hakuban_object_event ev;
            OK(hakuban_tag_observe_contract_try_next(&ev, tobs));
            const void *data;
            size_t len;
            OK(hakuban_object_state_data(&data, &len, ev.state));
            sink_hole += ((const unsigned char *)data)[len - 1];
            OK(hakuban_object_state_drop(ev.state));
            OK(hakuban_object_descriptor_drop(ev.descriptor));
        }
        spent += now_ns() - t0;
    }
    OK(hakuban_object_state_drop(st));
    for (int i = 0; i < BATCH; i++) {
        OK(hakuban_object_state_sink_drop(sinks[i]));
        OK(hakuban_object_expose_contract_drop(exps[i]));
        OK(hakuban_object_descriptor_drop(ds[i]));
    }
    OK(hakuban_tag_observe_contract_drop(tobs));
    OK(hakuban_tag_descriptor_drop(tag));
    return (double)spent / ((double)BATCH * ROUNDS);
}

/* ---- 1 MiB states ---- */

enum { MB = 1 << 20, MB_STATES = 2000 };

static double recv_1MB_impl(bool copy) {
    struct pair p;
    pair_open(&p, copy ? "\"1MB copy\"" : "\"1MB pointer\"");
    hakuban_object_state st = unversioned(MB);
    char *buf = malloc(MB);
    int64_t t0 = now_ns();
    for (int i = 0; i < MB_STATES; i++) {
        OK(hakuban_object_state_sink_send(p.sink, st));
        hakuban_object_state got;
        OK(hakuban_object_observe_contract_try_next(&got, p.obs));
        if (copy) {
            size_t len;
            OK(hakuban_object_state_data_copy(buf, MB, &len, got));
            sink_hole += (unsigned char)buf[len - 1];
        } else {
            const void *data;
            size_t len;
            OK(hakuban_object_state_data(&data, &len, got));
            sink_hole += ((const unsigned char *)data)[len - 1];
        }
        OK(hakuban_object_state_drop(got));
    }
    double ns = (double)(now_ns() - t0) / MB_STATES;
    free(buf);
    OK(hakuban_object_state_drop(st));
    pair_close(&p);
    return ns;
}
static double recv_1MB_copy(void) { return recv_1MB_impl(true); }
static double recv_1MB_pointer(void) { return recv_1MB_impl(false); }

/* ---- runner ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const struct {
    const char *name;
    bench_fn fn;
    const char *unit; /* "ns/op" or "MB/s" */
    double target;    /* ns/op upper bound; 0 = none */
} benches[] = {
    {"try_next_empty", try_next_empty, "ns/op", 150},
    {"try_next_empty_fd", try_next_empty_fd, "ns/op", 150},
    {"send_64B", send_64B, "ns/op", 0},
    {"send_recv_64B", send_recv_64B, "ns/op", 0},
    {"recv_64B_batch", recv_64B_batch, "ns/op", 500},
    {"recv_64B_tag_batch", recv_64B_tag_batch, "ns/op", 0},
    {"recv_1MB_copy", recv_1MB_copy, "MB/s", 0},
    {"recv_1MB_pointer", recv_1MB_pointer, "MB/s", 0},
};

int main(int argc, char **argv) {
    ex = make_exchange();
    int runs = 3;
    printf("%-22s %10s %10s %10s %12s %s\n", "benchmark", "run 1", "run 2", "run 3", "median", "");
    for (size_t b = 0; b < sizeof benches / sizeof benches[0]; b++) {
        if (argc > 1 && strstr(benches[b].name, argv[1]) == NULL) continue;
        double r[3];
        for (int i = 0; i < runs; i++) {
            double ns = benches[b].fn();
            r[i] = strcmp(benches[b].unit, "MB/s") == 0 ? (double)MB / (1 << 20) * 1e9 / ns : ns;
        }
        double sorted[3] = {r[0], r[1], r[2]};
        qsort(sorted, 3, sizeof(double), cmp_double);
        char verdict[48] = "";
        if (benches[b].target > 0)
            snprintf(verdict, sizeof verdict, "(target <= %.0f: %s)", benches[b].target,
                     sorted[1] <= benches[b].target ? "met" : "MISSED");
        if (strcmp(benches[b].unit, "MB/s") == 0)
            snprintf(verdict, sizeof verdict, "(%.1f us per 1 MiB state)", 1e6 / sorted[1]);
        printf("%-22s %10.1f %10.1f %10.1f %8.1f %-5s %s\n", benches[b].name, r[0], r[1], r[2],
               sorted[1], benches[b].unit, verdict);
        fflush(stdout);
    }
    OK(hakuban_exchange_drop(ex));
    return (int)(sink_hole & 0);
}
