/*
 * testutil.h — tiny test harness for the C tests of libhakuban: checks that
 * print the failing expression with the library's last error message, a
 * polling helper (never a sleep standing in for synchronization), and a
 * runner.
 */
#ifndef HAKUBAN_TESTUTIL_H
#define HAKUBAN_TESTUTIL_H

#define _GNU_SOURCE
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hakuban.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) FAIL("CHECK failed: %s", #cond);                                              \
    } while (0)

/* Checks that expr returns expected; prints the last error message if not. */
#define CHECK_RC(expr, expected)                                                                   \
    do {                                                                                           \
        int32_t rc_ = (expr);                                                                      \
        if (rc_ != (expected))                                                                     \
            FAIL("%s returned %d, expected %d (%s); last error: %s", #expr, (int)rc_,              \
                 (int)(expected), #expected, hakuban_last_error_message());                        \
    } while (0)

#define OK(expr) CHECK_RC(expr, HAKUBAN_OK)

/* Checks that expr fails with code and leaves a message mentioning needle. */
#define CHECK_ERR(expr, code, needle)                                                              \
    do {                                                                                           \
        CHECK_RC(expr, code);                                                                      \
        const char *m_ = hakuban_last_error_message();                                             \
        if ((needle)[0] != 0 && strstr(m_, (needle)) == NULL)                                    \
            FAIL("%s: message \"%s\" does not mention \"%s\"", #expr, m_, (needle));               \
    } while (0)

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * Polls pred(arg) every millisecond until it holds (true) or timeout_ms
 * passes (false). Use it to wait for something another thread does.
 */
static inline bool wait_for(bool (*pred)(void *), void *arg, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (pred(arg)) return true;
        if (now_ms() >= deadline) return false;
        sleep_ms(1);
    }
}

/* Whether fd is readable, waiting up to timeout_ms (0: only look). */
static inline bool readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    CHECK(n >= 0);
    CHECK((p.revents & (POLLERR | POLLNVAL)) == 0);
    return n == 1 && (p.revents & POLLIN);
}

static inline bool atomic_nonzero(void *p) { return atomic_load((atomic_int *)p) != 0; }

/* Waits until *flag (an atomic_int) is non-zero. */
#define WAIT_FLAG(flag, timeout_ms) wait_for(atomic_nonzero, (void *)(flag), (timeout_ms))

/* Fixtures. */
static inline hakuban_exchange make_exchange(void) {
    hakuban_exchange ex = 0;
    OK(hakuban_exchange_new(&ex, NULL));
    return ex;
}

static inline hakuban_object_descriptor make_object(const char *json, const char *tag) {
    hakuban_object_descriptor d = 0;
    const char *tags[1] = {tag};
    OK(hakuban_object_descriptor_new(&d, json, tag ? tags : NULL, tag ? 1 : 0));
    return d;
}

static inline hakuban_tag_descriptor make_tag(const char *json) {
    hakuban_tag_descriptor t = 0;
    OK(hakuban_tag_descriptor_new(&t, json));
    return t;
}

/* A state with a one-number version and the given text as data. */
static inline hakuban_object_state make_state(int64_t version, const char *text) {
    hakuban_object_state st = 0;
    const char *format[1] = {"text"};
    OK(hakuban_object_state_new(&st, &version, 1, format, 1, text, strlen(text)));
    return st;
}

/* The first version number of a state. */
static inline int64_t state_version(hakuban_object_state st) {
    const int64_t *v = NULL;
    size_t n = 0;
    OK(hakuban_object_state_version(&v, &n, st));
    CHECK(n >= 1);
    return v[0];
}

/* Waits up to 5 s for an assignment on an object expose contract. */
static inline hakuban_object_state_sink expect_sink(hakuban_object_expose_contract c) {
    hakuban_object_state_sink s = 0;
    OK(hakuban_object_expose_contract_next(&s, c, 5000));
    CHECK(s != 0);
    return s;
}

/* Sends a state with the given version and text through a sink. */
static inline void send_text(hakuban_object_state_sink sink, int64_t version, const char *text) {
    hakuban_object_state st = make_state(version, text);
    OK(hakuban_object_state_sink_send(sink, st));
    OK(hakuban_object_state_drop(st));
}

/* The runner: each test file defines TESTS as a list of T(name) entries. */
typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

#define T(name) {#name, name}

static inline int run_tests(const test_case *tests, size_t n, int argc, char **argv) {
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) continue;
        int64_t t0 = now_ms();
        fprintf(stderr, "=== %s\n", tests[i].name);
        tests[i].fn();
        fprintf(stderr, "--- ok %s (%" PRId64 " ms)\n", tests[i].name, now_ms() - t0);
        ran++;
    }
    fprintf(stderr, "PASS: %d tests\n", ran);
    return 0;
}

#define RUN_TESTS(list)                                                                            \
    int main(int argc, char **argv) {                                                              \
        return run_tests(list, sizeof(list) / sizeof(list[0]), argc, argv);                        \
    }

#endif
