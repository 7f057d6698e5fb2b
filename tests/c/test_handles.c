/*
 * test_handles.c — every function that takes a handle, called with bad
 * handles: 0, stale (already dropped), of the wrong kind, forged (right kind,
 * unknown slot) and garbage. Each must return HAKUBAN_ERR_INVALID_HANDLE with
 * a message saying why, and never crash. Drops accept 0 and refuse a second
 * drop. Functions with outputs refuse NULL.
 *
 * capi/header_test.go checks that every function of hakuban.h that takes a
 * handle appears in a CHECK_BAD line here.
 */
#include "testutil.h"

static int bad_checks;

static void check_invalid(int32_t rc, const char *expr, uint64_t h, const char *why, int line) {
    const char *m = hakuban_last_error_message();
    if (rc != HAKUBAN_ERR_INVALID_HANDLE) {
        fprintf(stderr, "%s:%d: %s with %s handle %#" PRIx64 " returned %d, want %d; message: %s\n",
                __FILE__, line, expr, why, h, (int)rc, HAKUBAN_ERR_INVALID_HANDLE, m);
        exit(1);
    }
    if (strstr(m, "invalid handle") == NULL || strstr(m, "hakuban_") != m) {
        fprintf(stderr, "%s:%d: %s with %s handle: unhelpful message \"%s\"\n", __FILE__, line, expr,
                why, m);
        exit(1);
    }
    bad_checks++;
}

/* A handle of the same kind as live, in a slot that was never used. */
static uint64_t forged(uint64_t live) {
    return (live & 0xFF00000000000000ull) | (1ull << 32) | 0x00FFFFFFull;
}

static const uint64_t garbage = 0xfedcba9876543210ull; /* no valid kind */

/* Runs expr (which uses H) with every kind of bad handle. */
#define CHECK_BAD(stale, wrong, expr)                                                              \
    do {                                                                                           \
        uint64_t bads_[5] = {0, (stale), (wrong), forged(stale), garbage};                         \
        const char *whys_[5] = {"zero", "stale", "wrong-kind", "forged", "garbage"};               \
        for (int i_ = 0; i_ < 5; i_++) {                                                           \
            uint64_t H = bads_[i_];                                                                \
            check_invalid((expr), #expr, H, whys_[i_], __LINE__);                                  \
        }                                                                                          \
    } while (0)

/* For drops: 0 is fine, every other bad handle is refused. */
#define CHECK_BAD_DROP(stale, wrong, fn)                                                           \
    do {                                                                                           \
        OK(fn(0));                                                                                 \
        uint64_t bads_[4] = {(stale), (wrong), forged(stale), garbage};                            \
        const char *whys_[4] = {"stale", "wrong-kind", "forged", "garbage"};                       \
        for (int i_ = 0; i_ < 4; i_++) check_invalid(fn(bads_[i_]), #fn, bads_[i_], whys_[i_],     \
                                                     __LINE__);                                    \
    } while (0)

static atomic_int callback_drops;
static void count_drop(void *user_data) {
    (void)user_data;
    atomic_fetch_add(&callback_drops, 1);
}
static void never_called(void *user_data) {
    (void)user_data;
    FAIL("callback registered on a bad handle was called");
}

/* One stale handle of every kind, and live handles to use as wrong kinds. */
static struct {
    hakuban_exchange ex;
    hakuban_object_descriptor desc;
    hakuban_tag_descriptor tag;
    hakuban_object_state state;
    hakuban_object_observe_contract oobs;
    hakuban_object_expose_contract oexp;
    hakuban_tag_observe_contract tobs;
    hakuban_tag_expose_contract texp;
    hakuban_object_state_sink sink;
    hakuban_connector conn;
    hakuban_listener lst;
} stale, live;

/* Nothing listens on port 1: a connector to it keeps retrying. */
static const char *const nowhere[1] = {"ws://127.0.0.1:1/"};

static hakuban_listener make_listener(hakuban_exchange ex) {
    hakuban_listener_options o;
    hakuban_listener_options_init(&o);
    o.address = "127.0.0.1:0";
    hakuban_listener l = 0;
    OK(hakuban_listener_new(&l, ex, &o));
    return l;
}

static void make_handles(void) {
    for (int round = 0; round < 2; round++) {
        hakuban_exchange ex = make_exchange();
        hakuban_object_descriptor d = make_object("\"handles\"", "\"t\"");
        hakuban_tag_descriptor t = make_tag("\"t\"");
        hakuban_object_state st = make_state(1, "x");
        hakuban_object_observe_contract oobs = 0;
        hakuban_object_expose_contract oexp = 0;
        hakuban_tag_observe_contract tobs = 0;
        hakuban_tag_expose_contract texp = 0;
        OK(hakuban_object_observe_contract_new(&oobs, ex, d));
        OK(hakuban_object_expose_contract_new(&oexp, ex, d, 1));
        OK(hakuban_tag_observe_contract_new(&tobs, ex, t));
        OK(hakuban_tag_expose_contract_new(&texp, ex, t, 1));
        hakuban_object_state_sink sink = expect_sink(oexp);
        hakuban_connector conn = 0;
        OK(hakuban_connector_new(&conn, ex, nowhere, 1, NULL));
        hakuban_listener lst = make_listener(ex);
        if (round == 0) {
            stale.ex = ex, stale.desc = d, stale.tag = t, stale.state = st;
            stale.oobs = oobs, stale.oexp = oexp, stale.tobs = tobs, stale.texp = texp;
            stale.sink = sink, stale.conn = conn, stale.lst = lst;
            OK(hakuban_connector_drop(conn));
            OK(hakuban_listener_drop(lst));
            OK(hakuban_object_state_sink_drop(sink));
            OK(hakuban_object_observe_contract_drop(oobs));
            OK(hakuban_object_expose_contract_drop(oexp));
            OK(hakuban_tag_observe_contract_drop(tobs));
            OK(hakuban_tag_expose_contract_drop(texp));
            OK(hakuban_object_state_drop(st));
            OK(hakuban_tag_descriptor_drop(t));
            OK(hakuban_object_descriptor_drop(d));
            OK(hakuban_exchange_drop(ex));
        } else {
            live.ex = ex, live.desc = d, live.tag = t, live.state = st;
            live.oobs = oobs, live.oexp = oexp, live.tobs = tobs, live.texp = texp;
            live.sink = sink, live.conn = conn, live.lst = lst;
        }
    }
}

static void drop_live(void) {
    OK(hakuban_connector_drop(live.conn));
    OK(hakuban_listener_drop(live.lst));
    OK(hakuban_object_state_sink_drop(live.sink));
    OK(hakuban_object_observe_contract_drop(live.oobs));
    OK(hakuban_object_expose_contract_drop(live.oexp));
    OK(hakuban_tag_observe_contract_drop(live.tobs));
    OK(hakuban_tag_expose_contract_drop(live.texp));
    OK(hakuban_object_state_drop(live.state));
    OK(hakuban_tag_descriptor_drop(live.tag));
    OK(hakuban_object_descriptor_drop(live.desc));
    OK(hakuban_exchange_drop(live.ex));
}

static void test_bad_handles_everywhere(void) {
    make_handles();
    char *s = NULL;
    const char *cs = NULL;
    const int64_t *v = NULL;
    const void *p = NULL;
    size_t n = 0;
    int32_t status = 0;
    int fd = 0;
    bool b = false;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    char buf[8];
    hakuban_object_descriptor d = 0;
    hakuban_tag_descriptor t = 0;
    hakuban_object_state st = 0;
    hakuban_object_state_sink sk = 0;
    hakuban_object_event ev;
    hakuban_object_observe_contract oobs = 0;
    hakuban_object_expose_contract oexp = 0;
    hakuban_tag_observe_contract tobs = 0;
    hakuban_tag_expose_contract texp = 0;
    hakuban_connector conn = 0;
    hakuban_listener lst = 0;
    hakuban_connector_status_info cst;
    hakuban_connector_status(&cst, live.conn);

    /* exchange */
    CHECK_BAD(stale.ex, live.desc, hakuban_exchange_snapshot(&s, H));
    CHECK_BAD(stale.ex, live.desc, hakuban_object_observe_contract_new(&oobs, H, live.desc));
    CHECK_BAD(stale.ex, live.desc, hakuban_object_expose_contract_new(&oexp, H, live.desc, 1));
    CHECK_BAD(stale.ex, live.desc, hakuban_tag_observe_contract_new(&tobs, H, live.tag));
    CHECK_BAD(stale.ex, live.desc, hakuban_tag_expose_contract_new(&texp, H, live.tag, 1));
    CHECK_BAD(stale.ex, live.desc, hakuban_connector_new(&conn, H, nowhere, 1, NULL));
    CHECK_BAD(stale.ex, live.desc, hakuban_listener_new(&lst, H, NULL));
    CHECK_BAD(stale.ex, live.desc, hakuban_listener_new_with_auth(&lst, H, NULL, NULL));
    CHECK_BAD_DROP(stale.ex, live.desc, hakuban_exchange_drop);

    /* tag descriptor */
    CHECK_BAD(stale.tag, live.desc, hakuban_tag_descriptor_json(&cs, H));
    CHECK_BAD(stale.tag, live.desc, hakuban_tag_observe_contract_new(&tobs, live.ex, H));
    CHECK_BAD(stale.tag, live.desc, hakuban_tag_expose_contract_new(&texp, live.ex, H, 1));
    CHECK_BAD_DROP(stale.tag, live.desc, hakuban_tag_descriptor_drop);

    /* object descriptor */
    CHECK_BAD(stale.desc, live.tag, hakuban_object_descriptor_json(&cs, H));
    CHECK_BAD(stale.desc, live.tag, hakuban_object_descriptor_key(&cs, H));
    CHECK_BAD(stale.desc, live.tag, hakuban_object_descriptor_tag_count(&n, H));
    CHECK_BAD(stale.desc, live.tag, hakuban_object_descriptor_tag_json(&cs, H, 0));
    CHECK_BAD(stale.desc, live.tag, hakuban_object_observe_contract_new(&oobs, live.ex, H));
    CHECK_BAD(stale.desc, live.tag, hakuban_object_expose_contract_new(&oexp, live.ex, H, 1));
    CHECK_BAD_DROP(stale.desc, live.tag, hakuban_object_descriptor_drop);

    /* object state */
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_version(&v, &n, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_format_count(&n, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_format(&cs, H, 0));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_data(&p, &n, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_data_len(&n, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_data_copy(buf, sizeof buf, &n, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_synchronized(&b, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_unsynchronized_ms(&i64, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_json(&cs, &n, H));
    CHECK_BAD(stale.state, live.ex, hakuban_object_state_sink_send(live.sink, H));
    CHECK_BAD_DROP(stale.state, live.ex, hakuban_object_state_drop);

    /* object observe contract */
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_try_next(&st, H));
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_next(&st, H, 0));
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_next(&st, H, -1));
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_fd(&fd, H));
    CHECK_BAD(stale.oobs, live.oexp,
              hakuban_object_observe_contract_set_callback(H, never_called, NULL, count_drop));
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_current(&st, H));
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_status(&status, H));
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_descriptor(&d, H));
    CHECK_BAD(stale.oobs, live.oexp, hakuban_object_observe_contract_close(H));
    CHECK_BAD_DROP(stale.oobs, live.oexp, hakuban_object_observe_contract_drop);

    /* object expose contract */
    CHECK_BAD(stale.oexp, live.oobs, hakuban_object_expose_contract_try_next(&sk, H));
    CHECK_BAD(stale.oexp, live.oobs, hakuban_object_expose_contract_next(&sk, H, -1));
    CHECK_BAD(stale.oexp, live.oobs, hakuban_object_expose_contract_fd(&fd, H));
    CHECK_BAD(stale.oexp, live.oobs,
              hakuban_object_expose_contract_set_callback(H, never_called, NULL, count_drop));
    CHECK_BAD(stale.oexp, live.oobs, hakuban_object_expose_contract_status(&status, H));
    CHECK_BAD(stale.oexp, live.oobs, hakuban_object_expose_contract_descriptor(&d, H));
    CHECK_BAD(stale.oexp, live.oobs, hakuban_object_expose_contract_close(H));
    CHECK_BAD_DROP(stale.oexp, live.oobs, hakuban_object_expose_contract_drop);

    /* tag observe contract */
    CHECK_BAD(stale.tobs, live.texp, hakuban_tag_observe_contract_try_next(&ev, H));
    CHECK_BAD(stale.tobs, live.texp, hakuban_tag_observe_contract_next(&ev, H, -1));
    CHECK_BAD(stale.tobs, live.texp, hakuban_tag_observe_contract_fd(&fd, H));
    CHECK_BAD(stale.tobs, live.texp,
              hakuban_tag_observe_contract_set_callback(H, never_called, NULL, count_drop));
    CHECK_BAD(stale.tobs, live.texp, hakuban_tag_observe_contract_status(&status, H));
    CHECK_BAD(stale.tobs, live.texp, hakuban_tag_observe_contract_tag(&t, H));
    CHECK_BAD(stale.tobs, live.texp, hakuban_tag_observe_contract_close(H));
    CHECK_BAD_DROP(stale.tobs, live.texp, hakuban_tag_observe_contract_drop);

    /* tag expose contract */
    CHECK_BAD(stale.texp, live.tobs, hakuban_tag_expose_contract_try_next(&sk, H));
    CHECK_BAD(stale.texp, live.tobs, hakuban_tag_expose_contract_next(&sk, H, -1));
    CHECK_BAD(stale.texp, live.tobs, hakuban_tag_expose_contract_fd(&fd, H));
    CHECK_BAD(stale.texp, live.tobs,
              hakuban_tag_expose_contract_set_callback(H, never_called, NULL, count_drop));
    CHECK_BAD(stale.texp, live.tobs, hakuban_tag_expose_contract_status(&status, H));
    CHECK_BAD(stale.texp, live.tobs, hakuban_tag_expose_contract_tag(&t, H));
    CHECK_BAD(stale.texp, live.tobs, hakuban_tag_expose_contract_close(H));
    CHECK_BAD_DROP(stale.texp, live.tobs, hakuban_tag_expose_contract_drop);

    /* sink */
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_send(H, live.state));
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_desynchronize(H));
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_current(&st, H));
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_token(&u64, H));
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_descriptor(&d, H));
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_try_next(H));
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_next(H, -1));
    CHECK_BAD(stale.sink, live.state, hakuban_object_state_sink_fd(&fd, H));
    CHECK_BAD(stale.sink, live.state,
              hakuban_object_state_sink_set_callback(H, never_called, NULL, count_drop));
    CHECK_BAD_DROP(stale.sink, live.state, hakuban_object_state_sink_drop);

    /* connector (a wait with a bad handle returns at once, whatever the
     * timeout) */
    CHECK_BAD(stale.conn, live.lst, hakuban_connector_status(&cst, H));
    CHECK_BAD(stale.conn, live.lst, hakuban_connector_wait(&cst, H, -1, 0));
    CHECK_BAD(stale.conn, live.lst, hakuban_connector_wait(&cst, H, HAKUBAN_CONNECTOR_CONNECTED, -1));
    CHECK_BAD(stale.conn, live.lst, hakuban_connector_status_fd(&fd, H));
    CHECK_BAD(stale.conn, live.lst, hakuban_connector_url(&s, H));
    CHECK_BAD(stale.conn, live.lst, hakuban_connector_last_error(&s, H));
    CHECK_BAD_DROP(stale.conn, live.lst, hakuban_connector_drop);

    /* listener */
    CHECK_BAD(stale.lst, live.conn, hakuban_listener_url(&s, H));
    CHECK_BAD(stale.lst, live.conn, hakuban_listener_set_auth(H, NULL));
    CHECK_BAD(stale.conn, live.lst, hakuban_connector_set_callback(H, NULL, NULL, NULL));
    CHECK_BAD_DROP(stale.lst, live.conn, hakuban_listener_drop);

    /* nothing was created by the failed calls, no callback registered */
    CHECK(oobs == 0 && oexp == 0 && tobs == 0 && texp == 0 && s == NULL);
    CHECK(conn == 0 && lst == 0);
    CHECK(atomic_load(&callback_drops) == 0); /* user_data stays the caller's */

    /* the live handles survived all of this */
    OK(hakuban_object_state_sink_send(live.sink, live.state));
    OK(hakuban_object_observe_contract_try_next(&st, live.oobs));
    OK(hakuban_object_state_drop(st));
    drop_live();
    fprintf(stderr, "%d bad-handle calls refused\n", bad_checks);
}

static void test_messages_say_why(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("1", NULL);
    OK(hakuban_object_descriptor_drop(d));
    char *s = NULL;
    CHECK_ERR(hakuban_exchange_snapshot(&s, 0), HAKUBAN_ERR_INVALID_HANDLE,
              "0 is never a handle (expected an exchange handle)");
    CHECK_ERR(hakuban_exchange_snapshot(&s, d), HAKUBAN_ERR_INVALID_HANDLE,
              "it is an object descriptor handle, not an exchange handle");
    const char *cs = NULL;
    CHECK_ERR(hakuban_object_descriptor_json(&cs, d), HAKUBAN_ERR_INVALID_HANDLE,
              "stale object descriptor handle (already dropped)");
    CHECK_ERR(hakuban_object_descriptor_json(&cs, forged(d)), HAKUBAN_ERR_INVALID_HANDLE,
              "unknown object descriptor handle");
    CHECK_ERR(hakuban_object_descriptor_json(&cs, garbage), HAKUBAN_ERR_INVALID_HANDLE,
              "not a handle of this library");
    CHECK_ERR(hakuban_exchange_drop(d), HAKUBAN_ERR_INVALID_HANDLE, "hakuban_exchange_drop: ");
    hakuban_listener l = make_listener(ex);
    CHECK_ERR(hakuban_connector_drop(l), HAKUBAN_ERR_INVALID_HANDLE,
              "it is a listener handle, not a connector handle");
    OK(hakuban_listener_drop(l));
    CHECK_ERR(hakuban_listener_url(&s, l), HAKUBAN_ERR_INVALID_HANDLE,
              "stale listener handle (already dropped)");
    OK(hakuban_exchange_drop(ex));
}

static void test_double_drop(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("\"dd\"", NULL);
    hakuban_tag_descriptor t = make_tag("\"dd\"");
    hakuban_object_state st = make_state(1, "dd");
    hakuban_object_observe_contract oobs = 0;
    hakuban_object_expose_contract oexp = 0;
    hakuban_tag_observe_contract tobs = 0;
    hakuban_tag_expose_contract texp = 0;
    OK(hakuban_object_observe_contract_new(&oobs, ex, d));
    OK(hakuban_object_expose_contract_new(&oexp, ex, d, 1));
    OK(hakuban_tag_observe_contract_new(&tobs, ex, t));
    OK(hakuban_tag_expose_contract_new(&texp, ex, t, 1));
    hakuban_object_state_sink sink = expect_sink(oexp);
    int fd = -1;
    OK(hakuban_object_observe_contract_fd(&fd, oobs)); /* with an fd and a callback too */
    OK(hakuban_object_observe_contract_set_callback(oobs, count_drop, NULL, NULL));
    hakuban_connector conn = 0;
    OK(hakuban_connector_new(&conn, ex, nowhere, 1, NULL));
    OK(hakuban_connector_status_fd(&fd, conn)); /* the connector's fd is closed by its drop */
    hakuban_listener lst = make_listener(ex);

#define TWICE(fn, h)                                                                               \
    do {                                                                                           \
        OK(fn(h));                                                                                 \
        CHECK_ERR(fn(h), HAKUBAN_ERR_INVALID_HANDLE, "stale");                                     \
    } while (0)
    TWICE(hakuban_connector_drop, conn);
    TWICE(hakuban_listener_drop, lst);
    TWICE(hakuban_object_state_sink_drop, sink);
    TWICE(hakuban_object_observe_contract_drop, oobs);
    TWICE(hakuban_object_expose_contract_drop, oexp);
    TWICE(hakuban_tag_observe_contract_drop, tobs);
    TWICE(hakuban_tag_expose_contract_drop, texp);
    TWICE(hakuban_object_state_drop, st);
    TWICE(hakuban_tag_descriptor_drop, t);
    TWICE(hakuban_object_descriptor_drop, d);
    TWICE(hakuban_exchange_drop, ex);
#undef TWICE
}

static void test_handles_are_not_reused(void) {
    /* A dropped handle never becomes valid again, even when its slot is
     * reused: the generation in the handle differs. */
    hakuban_object_state first = make_state(1, "a");
    OK(hakuban_object_state_drop(first));
    for (int i = 0; i < 5000; i++) {
        hakuban_object_state st = make_state(1, "b");
        CHECK(st != first);
        OK(hakuban_object_state_drop(st));
    }
    size_t n = 0;
    CHECK_ERR(hakuban_object_state_data_len(&n, first), HAKUBAN_ERR_INVALID_HANDLE, "stale");
}

static void test_null_outputs(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("\"nulls\"", "\"t\"");
    hakuban_tag_descriptor t = make_tag("\"t\"");
    hakuban_object_state st = make_state(1, "x");
    hakuban_object_observe_contract oobs = 0;
    hakuban_object_expose_contract oexp = 0;
    hakuban_tag_observe_contract tobs = 0;
    hakuban_tag_expose_contract texp = 0;
    OK(hakuban_object_observe_contract_new(&oobs, ex, d));
    OK(hakuban_object_expose_contract_new(&oexp, ex, d, 1));
    OK(hakuban_tag_observe_contract_new(&tobs, ex, t));
    OK(hakuban_tag_expose_contract_new(&texp, ex, t, 1));
    hakuban_object_state_sink sink = expect_sink(oexp);
    size_t n = 0;
    const void *p = NULL;
    const int64_t *v = NULL;
    const char *cs = NULL;

#define NUL(expr) CHECK_ERR(expr, HAKUBAN_ERR_INVALID_ARGUMENT, "is NULL")
    NUL(hakuban_exchange_new(NULL, NULL));
    NUL(hakuban_exchange_snapshot(NULL, ex));
    NUL(hakuban_tag_descriptor_new(NULL, "1"));
    NUL(hakuban_tag_descriptor_json(NULL, t));
    NUL(hakuban_object_descriptor_new(NULL, "1", NULL, 0));
    NUL(hakuban_object_descriptor_json(NULL, d));
    NUL(hakuban_object_descriptor_key(NULL, d));
    NUL(hakuban_object_descriptor_tag_count(NULL, d));
    NUL(hakuban_object_descriptor_tag_json(NULL, d, 0));
    NUL(hakuban_object_state_new(NULL, NULL, 0, NULL, 0, NULL, 0));
    NUL(hakuban_object_state_new_json(NULL, NULL, 0, "1"));
    NUL(hakuban_object_state_version(NULL, &n, st));
    NUL(hakuban_object_state_version(&v, NULL, st));
    NUL(hakuban_object_state_format_count(NULL, st));
    NUL(hakuban_object_state_format(NULL, st, 0));
    NUL(hakuban_object_state_data(NULL, &n, st));
    NUL(hakuban_object_state_data(&p, NULL, st));
    NUL(hakuban_object_state_data_len(NULL, st));
    NUL(hakuban_object_state_data_copy(NULL, 0, NULL, st));
    NUL(hakuban_object_state_synchronized(NULL, st));
    NUL(hakuban_object_state_unsynchronized_ms(NULL, st));
    NUL(hakuban_object_state_json(NULL, &n, st));
    NUL(hakuban_object_state_json(&cs, NULL, st));
    NUL(hakuban_object_observe_contract_new(NULL, ex, d));
    NUL(hakuban_object_observe_contract_try_next(NULL, oobs));
    NUL(hakuban_object_observe_contract_next(NULL, oobs, 0));
    NUL(hakuban_object_observe_contract_fd(NULL, oobs));
    NUL(hakuban_object_observe_contract_current(NULL, oobs));
    NUL(hakuban_object_observe_contract_status(NULL, oobs));
    NUL(hakuban_object_observe_contract_descriptor(NULL, oobs));
    NUL(hakuban_object_expose_contract_new(NULL, ex, d, 1));
    NUL(hakuban_object_expose_contract_try_next(NULL, oexp));
    NUL(hakuban_object_expose_contract_next(NULL, oexp, 0));
    NUL(hakuban_object_expose_contract_fd(NULL, oexp));
    NUL(hakuban_object_expose_contract_status(NULL, oexp));
    NUL(hakuban_object_expose_contract_descriptor(NULL, oexp));
    NUL(hakuban_tag_observe_contract_new(NULL, ex, t));
    NUL(hakuban_tag_observe_contract_try_next(NULL, tobs));
    NUL(hakuban_tag_observe_contract_next(NULL, tobs, 0));
    NUL(hakuban_tag_observe_contract_fd(NULL, tobs));
    NUL(hakuban_tag_observe_contract_status(NULL, tobs));
    NUL(hakuban_tag_observe_contract_tag(NULL, tobs));
    NUL(hakuban_tag_expose_contract_new(NULL, ex, t, 1));
    NUL(hakuban_tag_expose_contract_try_next(NULL, texp));
    NUL(hakuban_tag_expose_contract_next(NULL, texp, 0));
    NUL(hakuban_tag_expose_contract_fd(NULL, texp));
    NUL(hakuban_tag_expose_contract_status(NULL, texp));
    NUL(hakuban_tag_expose_contract_tag(NULL, texp));
    NUL(hakuban_object_state_sink_current(NULL, sink));
    NUL(hakuban_object_state_sink_token(NULL, sink));
    NUL(hakuban_object_state_sink_descriptor(NULL, sink));
    NUL(hakuban_object_state_sink_fd(NULL, sink));
    hakuban_connector conn = 0;
    NUL(hakuban_connector_new(NULL, ex, nowhere, 1, NULL));
    NUL(hakuban_connector_new(&conn, ex, NULL, 1, NULL));
    OK(hakuban_connector_new(&conn, ex, nowhere, 1, NULL));
    NUL(hakuban_connector_status(NULL, conn));
    NUL(hakuban_connector_wait(NULL, conn, -1, 0));
    NUL(hakuban_connector_status_fd(NULL, conn));
    NUL(hakuban_connector_url(NULL, conn));
    NUL(hakuban_connector_last_error(NULL, conn));
    NUL(hakuban_listener_new(NULL, ex, NULL));
    hakuban_listener lst = make_listener(ex);
    NUL(hakuban_listener_url(NULL, lst));
    hakuban_connector_options_init(NULL); /* ignored */
    hakuban_listener_options_init(NULL);
#undef NUL
    OK(hakuban_listener_drop(lst));
    OK(hakuban_connector_drop(conn));

    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_observe_contract_drop(oobs));
    OK(hakuban_object_expose_contract_drop(oexp));
    OK(hakuban_tag_observe_contract_drop(tobs));
    OK(hakuban_tag_expose_contract_drop(texp));
    OK(hakuban_object_state_drop(st));
    OK(hakuban_tag_descriptor_drop(t));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static const test_case tests[] = {
    T(test_bad_handles_everywhere),
    T(test_messages_say_why),
    T(test_double_drop),
    T(test_handles_are_not_reused),
    T(test_null_outputs),
};

RUN_TESTS(tests)
