/*
 * test_network.c — connectors and listeners, in one process: one exchange
 * listens on port 0, another connects to its URL, and objects exposed on
 * either side are observed on the other. Also: connector status, wait, URL
 * and last error through a link going down and coming back; a wait woken by
 * a drop; a refused second connector; bad URLs and options; a busy port;
 * wss:// with a certificate made by openssl (when $HAKUBAN_OPENSSL names it).
 *
 * Every wait has a deadline; nothing sleeps in place of synchronization.
 */
#include <pthread.h>

#include "testutil.h"

#include "process.h"

/* Generous: the ASan run on a loaded 2-core machine is slow. */
#define LINK_MS 15000

/* A listener on 127.0.0.1 at a free port. */
static hakuban_listener listen_any(hakuban_exchange ex) {
    hakuban_listener_options o;
    hakuban_listener_options_init(&o);
    o.address = "127.0.0.1:0";
    hakuban_listener l = 0;
    OK(hakuban_listener_new(&l, ex, &o));
    return l;
}

/* The listener's URL in buf. */
static void url_of(hakuban_listener l, char *buf, size_t cap) {
    char *u = NULL;
    OK(hakuban_listener_url(&u, l));
    CHECK(u != NULL && strlen(u) < cap);
    snprintf(buf, cap, "%s", u);
    hakuban_string_free(u);
}

static int port_of(const char *url) {
    const char *colon = strrchr(url, ':');
    CHECK(colon != NULL);
    return atoi(colon + 1);
}

/* Fast reconnects, so tests of a link coming back do not wait for the
 * default backoff (up to 10 s). */
static void fast_options(hakuban_connector_options *o) {
    hakuban_connector_options_init(o);
    o->min_backoff_ms = 20;
    o->max_backoff_ms = 200;
}

static hakuban_connector connect_to(hakuban_exchange ex, const char *url) {
    hakuban_connector_options o;
    fast_options(&o);
    hakuban_connector c = 0;
    OK(hakuban_connector_new(&c, ex, &url, 1, &o));
    CHECK(c != 0);
    return c;
}

/* Waits for state, failing with the connector's last error. */
static hakuban_connector_status_info expect_connector(hakuban_connector c, int32_t state) {
    hakuban_connector_status_info st;
    int32_t rc = hakuban_connector_wait(&st, c, state, LINK_MS);
    if (rc != HAKUBAN_OK) {
        char *err = NULL;
        hakuban_connector_last_error(&err, c);
        FAIL("connector did not reach state %d: rc %d, state %d, last error: %s", (int)state,
             (int)rc, (int)st.state, err ? err : "(none)");
    }
    CHECK(st.state == state);
    return st;
}

/* Waits up to LINK_MS for a synchronized state with data text on an observe
 * contract (earlier states, e.g. a previous exposer's, are skipped). */
static void expect_text(hakuban_object_observe_contract c, const char *text) {
    int64_t deadline = now_ms() + LINK_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) FAIL("no synchronized state \"%s\" within %d ms", text, LINK_MS);
        hakuban_object_state st = 0;
        int32_t rc = hakuban_object_observe_contract_next(&st, c, left);
        if (rc == HAKUBAN_TIMEOUT) continue;
        OK(rc);
        const void *data = NULL;
        size_t len = 0;
        bool sync = false;
        OK(hakuban_object_state_data(&data, &len, st));
        OK(hakuban_object_state_synchronized(&sync, st));
        bool match = sync && len == strlen(text) && memcmp(data, text, len) == 0;
        OK(hakuban_object_state_drop(st));
        if (match) return;
    }
}

/* Waits up to LINK_MS for a state that is not synchronized. */
static void expect_unsynchronized(hakuban_object_observe_contract c) {
    int64_t deadline = now_ms() + LINK_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) FAIL("the state was not marked unsynchronized within %d ms", LINK_MS);
        hakuban_object_state st = 0;
        int32_t rc = hakuban_object_observe_contract_next(&st, c, left);
        if (rc == HAKUBAN_TIMEOUT) continue;
        OK(rc);
        bool sync = true;
        OK(hakuban_object_state_synchronized(&sync, st));
        OK(hakuban_object_state_drop(st));
        if (!sync) return;
    }
}

/* Exposes json on one exchange, observes it on the other, sends text. */
static void check_flow(hakuban_exchange exposer_ex, hakuban_exchange observer_ex, const char *json,
                       const char *text) {
    hakuban_object_descriptor d = make_object(json, NULL);
    hakuban_object_expose_contract exp = 0;
    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_expose_contract_new(&exp, exposer_ex, d, 1));
    OK(hakuban_object_observe_contract_new(&obs, observer_ex, d));
    hakuban_object_state_sink sink = 0;
    OK(hakuban_object_expose_contract_next(&sink, exp, LINK_MS)); /* assigned over the link */
    send_text(sink, 1, text);
    expect_text(obs, text);
    int32_t status = -1;
    OK(hakuban_object_observe_contract_status(&status, obs));
    CHECK(status == HAKUBAN_STATUS_ACTIVE);
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_descriptor_drop(d));
}

static hakuban_exchange named_exchange(const char *name) {
    hakuban_exchange_options o;
    hakuban_exchange_options_init(&o);
    o.name = name;
    hakuban_exchange ex = 0;
    OK(hakuban_exchange_new(&ex, &o));
    return ex;
}

/* Two exchanges linked in one process: up listens on a free port, down
 * connects to it. drop_link drops what is left (set dropped parts to 0). */
struct link {
    hakuban_exchange up, down;
    hakuban_listener l;
    hakuban_connector c;
    char url[256];
};

static void make_link(struct link *k) {
    k->up = make_exchange();
    k->down = make_exchange();
    k->l = listen_any(k->up);
    url_of(k->l, k->url, sizeof k->url);
    k->c = connect_to(k->down, k->url);
}

static void drop_link(struct link *k) {
    OK(hakuban_connector_drop(k->c));
    OK(hakuban_listener_drop(k->l));
    OK(hakuban_exchange_drop(k->down));
    OK(hakuban_exchange_drop(k->up));
}

/* ---- the basics ---- */

static void test_options_init(void) {
    hakuban_connector_options c;
    memset(&c, 0xAB, sizeof c);
    hakuban_connector_options_init(&c);
    CHECK(c.name == NULL && c.token == NULL && c.token_len == 0);
    CHECK(c.min_backoff_ms == 100 && c.max_backoff_ms == 10000);
    CHECK(c.ping_interval_ms == 4000 && c.ping_timeout_ms == 5000);
    CHECK(c.tls_ca_file == NULL && c.tls_cert_file == NULL && c.tls_key_file == NULL);

    hakuban_listener_options l;
    memset(&l, 0xAB, sizeof l);
    hakuban_listener_options_init(&l);
    CHECK(strcmp(l.address, "127.0.0.1:3001") == 0 && strcmp(l.path, "/") == 0);
    CHECK(l.tls_cert_file == NULL && l.tls_key_file == NULL && l.tls_client_ca_file == NULL);
    CHECK(l.ping_interval_ms == 4000 && l.ping_timeout_ms == 5000);
}

static void test_listen_connect_observe(void) {
    hakuban_exchange a = named_exchange("a"), b = named_exchange("b");
    hakuban_listener l = listen_any(a);
    char url[256];
    url_of(l, url, sizeof url);
    CHECK(strncmp(url, "ws://127.0.0.1:", 15) == 0 && port_of(url) > 0);
    CHECK(url[strlen(url) - 1] == '/');

    hakuban_connector c = connect_to(b, url);
    hakuban_connector_status_info st = expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);
    CHECK(st.connects == 1);
    char *cu = NULL;
    OK(hakuban_connector_url(&cu, c));
    CHECK(strcmp(cu, url) == 0);
    hakuban_string_free(cu);
    char *err = (char *)"untouched";
    OK(hakuban_connector_last_error(&err, c));
    CHECK(err == NULL); /* nothing failed */

    /* both directions: exposed upstream and observed downstream, and back */
    check_flow(a, b, "\"down\"", "from the listening side");
    check_flow(b, a, "\"up\"", "from the connecting side");

    /* the snapshot shows the link */
    char *snap = NULL;
    OK(hakuban_exchange_snapshot(&snap, a));
    CHECK(strstr(snap, "\"b\"") != NULL); /* the peer's name */
    hakuban_string_free(snap);

    OK(hakuban_connector_drop(c));
    OK(hakuban_listener_drop(l));
    OK(hakuban_exchange_drop(b));
    OK(hakuban_exchange_drop(a));
}

/* A tag observer downstream sees an object exposed upstream (tags travel). */
static void test_tags_over_the_link(void) {
    struct link k;
    make_link(&k);
    hakuban_exchange a = k.up, b = k.down;

    hakuban_object_descriptor d = make_object("{\"room\":\"hall\"}", "\"rooms\"");
    hakuban_tag_descriptor t = make_tag("\"rooms\"");
    hakuban_object_expose_contract exp = 0;
    hakuban_object_observe_contract keep = 0;
    hakuban_tag_observe_contract tobs = 0;
    OK(hakuban_object_expose_contract_new(&exp, a, d, 1));
    OK(hakuban_tag_observe_contract_new(&tobs, b, t));
    OK(hakuban_object_observe_contract_new(&keep, b, d)); /* makes it live */
    hakuban_object_state_sink sink = 0;
    OK(hakuban_object_expose_contract_next(&sink, exp, LINK_MS));
    send_text(sink, 7, "hall");

    int64_t deadline = now_ms() + LINK_MS;
    for (bool seen = false; !seen;) {
        CHECK(now_ms() < deadline);
        hakuban_object_event ev;
        int32_t rc = hakuban_tag_observe_contract_next(&ev, tobs, deadline - now_ms());
        if (rc == HAKUBAN_TIMEOUT) continue;
        OK(rc);
        if (!ev.gone) seen = state_version(ev.state) == 7;
        OK(hakuban_object_state_drop(ev.state));
        OK(hakuban_object_descriptor_drop(ev.descriptor));
    }
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_observe_contract_drop(keep));
    OK(hakuban_tag_observe_contract_drop(tobs));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_tag_descriptor_drop(t));
    OK(hakuban_object_descriptor_drop(d));
    drop_link(&k);
}

/* ---- status and wait through a link going down and coming back ---- */

static void test_connector_status_through_reconnect(void) {
    hakuban_exchange a = make_exchange(), b = make_exchange();
    hakuban_listener l = listen_any(a);
    char url[256];
    url_of(l, url, sizeof url);
    hakuban_connector c = connect_to(b, url);
    hakuban_connector_status_info st = expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);

    /* nothing changes: waits time out, and say so with the current status */
    hakuban_connector_status_info seen = st;
    int64_t t0 = now_ms();
    CHECK_RC(hakuban_connector_wait(&seen, c, -1, 50), HAKUBAN_TIMEOUT);
    CHECK(now_ms() - t0 >= 45);
    CHECK(seen.state == HAKUBAN_CONNECTOR_CONNECTED && seen.connects == 1);
    CHECK_RC(hakuban_connector_wait(&seen, c, HAKUBAN_CONNECTOR_DISCONNECTED, 0), HAKUBAN_TIMEOUT);
    OK(hakuban_connector_wait(&seen, c, HAKUBAN_CONNECTOR_CONNECTED, 0)); /* already there */

    /* an object flowing downstream */
    hakuban_object_descriptor d = make_object("\"reconnect\"", NULL);
    hakuban_object_expose_contract exp = 0;
    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_expose_contract_new(&exp, a, d, 1));
    OK(hakuban_object_observe_contract_new(&obs, b, d));
    hakuban_object_state_sink sink = 0;
    OK(hakuban_object_expose_contract_next(&sink, exp, LINK_MS));
    send_text(sink, 1, "before");
    expect_text(obs, "before");

    /* the upstream goes away: the next change leaves CONNECTED, and the
     * observer downstream learns its state is no longer synchronized */
    int port = port_of(url);
    OK(hakuban_listener_drop(l));
    seen = st;
    OK(hakuban_connector_wait(&seen, c, -1, LINK_MS));
    CHECK(seen.state != HAKUBAN_CONNECTOR_CONNECTED);
    expect_unsynchronized(obs);
    /* the exposer upstream lost its only observer: its assignment ends */
    CHECK_RC(hakuban_object_state_sink_next(sink, LINK_MS), HAKUBAN_END);
    OK(hakuban_object_state_sink_drop(sink));

    /* it keeps trying, and says why it fails */
    expect_connector(c, HAKUBAN_CONNECTOR_DISCONNECTED);
    char *err = NULL;
    OK(hakuban_connector_last_error(&err, c));
    CHECK(err != NULL && strlen(err) > 0);
    fprintf(stderr, "  last error while the listener is gone: %s\n", err);
    hakuban_string_free(err);
    OK(hakuban_connector_status(&st, c));
    CHECK(st.connects == 1 && st.failures >= 1);

    /* the upstream comes back on the same port: reconnected, contracts
     * declared again, the object flows again */
    hakuban_listener_options o;
    hakuban_listener_options_init(&o);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    o.address = addr;
    OK(hakuban_listener_new(&l, a, &o));
    st = expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);
    CHECK(st.connects == 2);
    OK(hakuban_object_expose_contract_next(&sink, exp, LINK_MS));
    send_text(sink, 2, "after");
    expect_text(obs, "after");

    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_connector_drop(c));
    OK(hakuban_listener_drop(l));
    OK(hakuban_exchange_drop(b));
    OK(hakuban_exchange_drop(a));
}

/* Every state change, seen by a loop of waits with state -1: none is
 * missed between two calls, because each compares with the last one. */
static void test_wait_any_change_sees_every_state(void) {
    struct link k;
    make_link(&k);
    hakuban_connector c = k.c;
    hakuban_connector_status_info st;
    OK(hakuban_connector_status(&st, c));
    bool connected = false;
    int changes = 0;
    while (!connected) {
        int32_t before = st.state;
        OK(hakuban_connector_wait(&st, c, -1, LINK_MS));
        CHECK(st.state != before || st.connects > 0 || st.failures > 0);
        connected = st.state == HAKUBAN_CONNECTOR_CONNECTED;
        changes++;
    }
    CHECK(st.connects == 1 && changes >= 1);
    drop_link(&k);
}

/* ---- the status fd: readable exactly while the status changed since it
 * was last read ---- */

static void test_status_fd(void) {
    struct link k;
    make_link(&k);
    hakuban_connector c = k.c;
    int fd = -1, again = -1;
    OK(hakuban_connector_status_fd(&fd, c));
    OK(hakuban_connector_status_fd(&again, c));
    CHECK(fd >= 0 && again == fd);

    /* the link comes up: a change since the connector was made */
    CHECK(readable(fd, LINK_MS));
    CHECK(readable(fd, 0)); /* level-triggered: stays readable until read */
    hakuban_connector_status_info st;
    OK(hakuban_connector_wait(&st, c, HAKUBAN_CONNECTOR_CONNECTED, LINK_MS));
    CHECK(st.connects == 1);
    CHECK(!readable(fd, 0)); /* the wait handed out the status: read */
    OK(hakuban_connector_status(&st, c));
    CHECK(st.state == HAKUBAN_CONNECTOR_CONNECTED);
    CHECK(!readable(fd, 50)); /* nothing changes while the link is up */

    /* the upstream goes away: readable again, until read */
    OK(hakuban_listener_drop(k.l));
    k.l = 0;
    CHECK(readable(fd, LINK_MS));
    CHECK(readable(fd, 0));
    OK(hakuban_connector_status(&st, c));
    CHECK(st.state != HAKUBAN_CONNECTOR_CONNECTED);
    /* (it keeps retrying, so the next change may come at any moment) */

    /* the exchange is dropped: CLOSED, readable for good, also after a read */
    OK(hakuban_exchange_drop(k.down));
    k.down = 0;
    OK(hakuban_connector_wait(&st, c, HAKUBAN_CONNECTOR_CLOSED, LINK_MS));
    CHECK(readable(fd, 0));
    OK(hakuban_connector_status(&st, c));
    CHECK(st.state == HAKUBAN_CONNECTOR_CLOSED);
    CHECK(readable(fd, 0));
    CHECK_RC(hakuban_connector_wait(&st, c, -1, 0), HAKUBAN_END);
    CHECK(readable(fd, 0));
    drop_link(&k); /* the connector's drop closes the fd */
}

/* The fd made after a change: readable at once unless the change was read. */
static void test_status_fd_made_late(void) {
    struct link k;
    make_link(&k);
    hakuban_connector_status_info st;
    OK(hakuban_connector_wait(&st, k.c, HAKUBAN_CONNECTOR_CONNECTED, LINK_MS));
    int fd = -1;
    OK(hakuban_connector_status_fd(&fd, k.c));
    CHECK(!readable(fd, 0)); /* CONNECTED was read (by the wait) */
    OK(hakuban_connector_drop(k.c));

    /* a connector whose status was never read: its first status
     * (CONNECTING, no connects) counts as read. An object crossing the link
     * shows it is up without reading the status. */
    k.c = connect_to(k.down, k.url);
    check_flow(k.up, k.down, "\"late fd\"", "up");
    OK(hakuban_connector_status_fd(&fd, k.c));
    CHECK(readable(fd, 0)); /* at once: it changed before the fd was made */
    OK(hakuban_connector_status(&st, k.c));
    CHECK(st.state == HAKUBAN_CONNECTOR_CONNECTED && st.connects == 1);
    CHECK(!readable(fd, 0));
    drop_link(&k);
}

/* Fail over: the first URL does not answer, the second does. */
static void test_url_list_fails_over(void) {
    hakuban_exchange a = make_exchange(), b = make_exchange();
    hakuban_listener l = listen_any(a);
    char url[256];
    url_of(l, url, sizeof url);
    const char *urls[2] = {"ws://127.0.0.1:1/", url};
    hakuban_connector_options o;
    fast_options(&o);
    hakuban_connector c = 0;
    OK(hakuban_connector_new(&c, b, urls, 2, &o));
    hakuban_connector_status_info st = expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);
    CHECK(st.failures >= 1); /* the first URL failed first */
    char *cu = NULL;
    OK(hakuban_connector_url(&cu, c));
    CHECK(strcmp(cu, url) == 0);
    hakuban_string_free(cu);
    OK(hakuban_connector_drop(c));
    OK(hakuban_listener_drop(l));
    OK(hakuban_exchange_drop(b));
    OK(hakuban_exchange_drop(a));
}

/* ---- waking and ending waits ---- */

struct waiter {
    hakuban_connector c;
    int32_t state;
    atomic_int started, returned;
    int32_t rc;
    hakuban_connector_status_info st;
};

static void *wait_thread(void *arg) {
    struct waiter *w = arg;
    atomic_store(&w->started, 1);
    w->rc = hakuban_connector_wait(&w->st, w->c, w->state, -1);
    atomic_store(&w->returned, 1);
    return NULL;
}

static bool waiter_returned(void *arg) { return atomic_load(&((struct waiter *)arg)->returned); }

static void test_drop_wakes_wait(void) {
    hakuban_exchange ex = make_exchange();
    const char *nowhere = "ws://127.0.0.1:1/";
    hakuban_connector c = 0;
    OK(hakuban_connector_new(&c, ex, &nowhere, 1, NULL));
    struct waiter w = {.c = c, .state = HAKUBAN_CONNECTOR_CONNECTED};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, wait_thread, &w) == 0);
    CHECK(WAIT_FLAG(&w.started, 5000));
    /* it must really be blocked: nothing will connect */
    if (wait_for(waiter_returned, &w, 50)) FAIL("wait returned %d without cause", (int)w.rc);
    int64_t t0 = now_ms();
    OK(hakuban_connector_drop(c));
    CHECK(wait_for(waiter_returned, &w, 5000));
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_RC(w.rc, HAKUBAN_END);
    fprintf(stderr, "  woken in %" PRId64 " ms\n", now_ms() - t0);
    hakuban_connector_status_info st;
    CHECK_ERR(hakuban_connector_status(&st, c), HAKUBAN_ERR_INVALID_HANDLE, "stale connector");
    OK(hakuban_exchange_drop(ex));
}

static void test_exchange_drop_closes_connector(void) {
    hakuban_exchange ex = make_exchange();
    const char *nowhere = "ws://127.0.0.1:1/";
    hakuban_connector c = 0;
    OK(hakuban_connector_new(&c, ex, &nowhere, 1, NULL));
    struct waiter w = {.c = c, .state = HAKUBAN_CONNECTOR_CONNECTED};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, wait_thread, &w) == 0);
    CHECK(WAIT_FLAG(&w.started, 5000));
    OK(hakuban_exchange_drop(ex));
    /* CLOSED is final: a wait for CONNECTED ends */
    CHECK(wait_for(waiter_returned, &w, 5000));
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_RC(w.rc, HAKUBAN_END);
    CHECK(w.st.state == HAKUBAN_CONNECTOR_CLOSED);
    /* the handle stays valid until dropped */
    hakuban_connector_status_info st;
    OK(hakuban_connector_status(&st, c));
    CHECK(st.state == HAKUBAN_CONNECTOR_CLOSED);
    OK(hakuban_connector_wait(&st, c, HAKUBAN_CONNECTOR_CLOSED, 0));
    CHECK_RC(hakuban_connector_wait(&st, c, -1, -1), HAKUBAN_END); /* nothing will change */
    CHECK_RC(hakuban_connector_wait(&st, c, HAKUBAN_CONNECTOR_CONNECTING, -1), HAKUBAN_END);
    char *u = NULL;
    OK(hakuban_connector_url(&u, c));
    CHECK(strcmp(u, nowhere) == 0);
    hakuban_string_free(u);
    OK(hakuban_connector_drop(c));
}

/* ---- refusals ---- */

static void test_second_connector_refused(void) {
    hakuban_exchange ex = make_exchange();
    const char *nowhere = "ws://127.0.0.1:1/";
    hakuban_connector first = 0, second = 0;
    OK(hakuban_connector_new(&first, ex, &nowhere, 1, NULL));
    CHECK_ERR(hakuban_connector_new(&second, ex, &nowhere, 1, NULL), HAKUBAN_ERR_INVALID_ARGUMENT,
              "already has a connector");
    CHECK(second == 0);
    OK(hakuban_connector_drop(first));
    OK(hakuban_connector_new(&second, ex, &nowhere, 1, NULL)); /* one at a time */
    OK(hakuban_connector_drop(second));
    OK(hakuban_exchange_drop(ex));
}

static void test_bad_urls_and_options(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_connector c = 0;
    const char *good = "ws://127.0.0.1:1/";
#define BAD_URL(u, needle)                                                                         \
    do {                                                                                           \
        const char *us_[2] = {good, (u)};                                                          \
        CHECK_ERR(hakuban_connector_new(&c, ex, us_, 2, NULL), HAKUBAN_ERR_INVALID_ARGUMENT,       \
                  needle);                                                                         \
    } while (0)
    BAD_URL("http://127.0.0.1:1/", "want ws://");
    BAD_URL("ws://", "want ws://");
    BAD_URL("", "want ws://");
    BAD_URL("127.0.0.1:3001", "");
    BAD_URL(NULL, "urls[1] is NULL");
#undef BAD_URL
    CHECK_ERR(hakuban_connector_new(&c, ex, &good, 0, NULL), HAKUBAN_ERR_INVALID_ARGUMENT,
              "url_count is 0");

    hakuban_connector_options o;
#define BAD_OPTION(set, code, needle)                                                              \
    do {                                                                                           \
        hakuban_connector_options_init(&o);                                                        \
        set;                                                                                       \
        CHECK_ERR(hakuban_connector_new(&c, ex, &good, 1, &o), code, needle);                      \
    } while (0)
    BAD_OPTION(o.min_backoff_ms = -1, HAKUBAN_ERR_INVALID_CONFIG, "MinBackoff");
    BAD_OPTION((o.min_backoff_ms = 500, o.max_backoff_ms = 100), HAKUBAN_ERR_INVALID_CONFIG,
               "MaxBackoff");
    BAD_OPTION(o.ping_timeout_ms = -5, HAKUBAN_ERR_INVALID_CONFIG, "PingTimeout");
    BAD_OPTION(o.ping_interval_ms = INT64_MAX, HAKUBAN_ERR_INVALID_CONFIG, "ping_interval_ms");
    /* In nanoseconds this would wrap around to a positive timeout. */
    BAD_OPTION(o.ping_timeout_ms = -9223372036855, HAKUBAN_ERR_INVALID_CONFIG, "ping_timeout_ms");
    BAD_OPTION(o.token_len = 3, HAKUBAN_ERR_INVALID_ARGUMENT, "token is NULL");
    char big[5000];
    memset(big, 'x', sizeof big);
    BAD_OPTION((o.token = big, o.token_len = sizeof big), HAKUBAN_ERR_INVALID_CONFIG, "Token");
    big[300] = 0;
    BAD_OPTION(o.name = big, HAKUBAN_ERR_INVALID_CONFIG, "Name");
    BAD_OPTION(o.tls_ca_file = "/nonexistent/ca.pem", HAKUBAN_ERR_INVALID_CONFIG,
               "/nonexistent/ca.pem");
    BAD_OPTION(o.tls_cert_file = "/nonexistent/cert.pem", HAKUBAN_ERR_INVALID_CONFIG,
               "needs both a certificate and a key");
#undef BAD_OPTION
    CHECK(c == 0);

    /* none of that left a connector behind */
    hakuban_connector_options_init(&o);
    o.name = "named";
    o.token = "secret";
    o.token_len = 6;
    OK(hakuban_connector_new(&c, ex, &good, 1, &o));
    hakuban_connector_status_info st;
    CHECK_ERR(hakuban_connector_wait(&st, c, HAKUBAN_CONNECTOR_REFUSED + 1, 0),
              HAKUBAN_ERR_INVALID_ARGUMENT, "not a connector state");
    OK(hakuban_connector_drop(c));

    /* listener options */
    hakuban_listener l = 0;
    hakuban_listener_options lo;
#define BAD_LISTENER(set, code, needle)                                                            \
    do {                                                                                           \
        hakuban_listener_options_init(&lo);                                                        \
        lo.address = "127.0.0.1:0";                                                                \
        set;                                                                                       \
        CHECK_ERR(hakuban_listener_new(&l, ex, &lo), code, needle);                                \
    } while (0)
    BAD_LISTENER(lo.path = "no-slash", HAKUBAN_ERR_INVALID_CONFIG, "must start with /");
    BAD_LISTENER(lo.ping_interval_ms = -1, HAKUBAN_ERR_INVALID_CONFIG, "PingInterval");
    BAD_LISTENER(lo.ping_interval_ms = INT64_MIN, HAKUBAN_ERR_INVALID_CONFIG, "ping_interval_ms");
    BAD_LISTENER(lo.tls_key_file = "/nonexistent/key.pem", HAKUBAN_ERR_INVALID_CONFIG,
                 "needs both a certificate and a key");
    BAD_LISTENER((lo.tls_cert_file = "/nonexistent/c.pem", lo.tls_key_file = "/nonexistent/k.pem"),
                 HAKUBAN_ERR_INVALID_CONFIG, "/nonexistent/c.pem");
    BAD_LISTENER(lo.address = "no port", HAKUBAN_ERR_CONNECTION, "no port");
#undef BAD_LISTENER
    CHECK(l == 0);
    OK(hakuban_exchange_drop(ex));
}

static void test_listener_bind_failure(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_listener l = listen_any(ex);
    char url[256];
    url_of(l, url, sizeof url);
    hakuban_listener_options o;
    hakuban_listener_options_init(&o);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port_of(url));
    o.address = addr;
    hakuban_listener second = 0;
    CHECK_ERR(hakuban_listener_new(&second, ex, &o), HAKUBAN_ERR_CONNECTION,
              "address already in use");
    CHECK(second == 0);
    fprintf(stderr, "  %s\n", hakuban_last_error_message());
    /* once the first one is dropped, the port is free again */
    OK(hakuban_listener_drop(l));
    OK(hakuban_listener_new(&second, ex, &o));
    OK(hakuban_listener_drop(second));

    /* a path of our own */
    hakuban_listener_options_init(&o);
    o.address = "127.0.0.1:0";
    o.path = "/hakuban/v1";
    OK(hakuban_listener_new(&l, ex, &o));
    url_of(l, url, sizeof url);
    CHECK(strstr(url, "/hakuban/v1") != NULL);
    hakuban_exchange b = make_exchange();
    hakuban_connector c = connect_to(b, url);
    expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);
    OK(hakuban_connector_drop(c));
    OK(hakuban_exchange_drop(b));
    OK(hakuban_listener_drop(l));
    OK(hakuban_exchange_drop(ex));
}

/* ---- wss:// ---- */

static void test_tls(void) {
    const char *openssl = getenv("HAKUBAN_OPENSSL");
    if (!executable(openssl)) {
        fprintf(stderr, "  SKIPPED: $HAKUBAN_OPENSSL does not name openssl\n");
        return;
    }
    char dir[256], cert[300], key[300];
    make_temp_dir(dir, sizeof dir, "hakuban-tls");
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    /* self-signed, for 127.0.0.1: it is its own CA, server and client
     * certificate */
    const char *argv[] = {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                          "-days", "1", "-subj", "/CN=hakuban-test", "-addext",
                          "subjectAltName=IP:127.0.0.1", NULL};
    CHECK(run_child(argv, 30000));

    hakuban_exchange a = make_exchange(), b = make_exchange();
    hakuban_listener_options lo;
    hakuban_listener_options_init(&lo);
    lo.address = "127.0.0.1:0";
    lo.tls_cert_file = cert;
    lo.tls_key_file = key;
    hakuban_listener l = 0;
    OK(hakuban_listener_new(&l, a, &lo));
    char url[256];
    url_of(l, url, sizeof url);
    CHECK(strncmp(url, "wss://127.0.0.1:", 16) == 0);

    hakuban_connector_options co;
    fast_options(&co);
    co.tls_ca_file = cert;
    hakuban_connector c = 0;
    const char *u = url;
    OK(hakuban_connector_new(&c, b, &u, 1, &co));
    expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);
    check_flow(a, b, "\"over tls\"", "secret");
    OK(hakuban_connector_drop(c));

    /* without the CA, the server's certificate is not trusted */
    fast_options(&co);
    OK(hakuban_connector_new(&c, b, &u, 1, &co));
    expect_connector(c, HAKUBAN_CONNECTOR_DISCONNECTED);
    char *err = NULL;
    OK(hakuban_connector_last_error(&err, c));
    CHECK(err != NULL && strstr(err, "certificate") != NULL);
    fprintf(stderr, "  untrusted server: %s\n", err);
    hakuban_string_free(err);
    OK(hakuban_connector_drop(c));
    OK(hakuban_listener_drop(l));

    /* mutual TLS: the listener wants a client certificate */
    lo.tls_client_ca_file = cert;
    OK(hakuban_listener_new(&l, a, &lo));
    url_of(l, url, sizeof url);
    fast_options(&co);
    co.tls_ca_file = cert;
    OK(hakuban_connector_new(&c, b, &u, 1, &co)); /* no client certificate */
    expect_connector(c, HAKUBAN_CONNECTOR_DISCONNECTED);
    OK(hakuban_connector_drop(c));
    co.tls_cert_file = cert;
    co.tls_key_file = key;
    OK(hakuban_connector_new(&c, b, &u, 1, &co));
    expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);
    check_flow(b, a, "\"mutual\"", "both sides verified");
    OK(hakuban_connector_drop(c));
    OK(hakuban_listener_drop(l));

    OK(hakuban_exchange_drop(b));
    OK(hakuban_exchange_drop(a));
    remove_temp_dir(dir);
}

/* ---- the status callback ---- */

struct status_cb {
    hakuban_connector c;
    atomic_int last_state; /* read by the callback from the library */
    atomic_int saw_connected, saw_disconnected;
    atomic_long calls;
    atomic_int drops;
    atomic_int dropped; /* set by the test right after drop returned */
    atomic_int late;    /* calls after that */
    pthread_t registering_thread;
    atomic_int wrong_thread;
};

static void status_cb(void *user_data) {
    struct status_cb *s = user_data;
    if (atomic_load(&s->dropped)) atomic_fetch_add(&s->late, 1);
    if (pthread_equal(pthread_self(), s->registering_thread)) atomic_store(&s->wrong_thread, 1);
    atomic_fetch_add(&s->calls, 1);
    hakuban_connector_status_info st;
    if (hakuban_connector_status(&st, s->c) != HAKUBAN_OK) return; /* dropped meanwhile */
    atomic_store(&s->last_state, st.state);
    if (st.state == HAKUBAN_CONNECTOR_CONNECTED) atomic_store(&s->saw_connected, 1);
    if (st.state == HAKUBAN_CONNECTOR_DISCONNECTED) atomic_store(&s->saw_disconnected, 1);
}

static void status_drop(void *user_data) { atomic_fetch_add(&((struct status_cb *)user_data)->drops, 1); }

/* A connector's callback tells each change of its status: connected, the
 * link lost (the listener dropped), connected again; its drop function runs
 * once, when the registration is replaced or the connector dropped, and no
 * call comes after drop returns. A bad handle keeps user_data. */
static void test_connector_callback(void) {
    hakuban_exchange up = make_exchange(), down = make_exchange();
    hakuban_listener l = listen_any(up);
    char url[256];
    url_of(l, url, sizeof url);
    int port = port_of(url);
    struct status_cb s = {.last_state = -1, .registering_thread = pthread_self()};
    s.c = connect_to(down, url);
    OK(hakuban_connector_set_callback(s.c, status_cb, &s, status_drop));
    CHECK(WAIT_FLAG(&s.saw_connected, LINK_MS));

    OK(hakuban_listener_drop(l)); /* the link goes down */
    CHECK(WAIT_FLAG(&s.saw_disconnected, LINK_MS));
    atomic_store(&s.saw_connected, 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    hakuban_listener_options lo;
    hakuban_listener_options_init(&lo);
    lo.address = addr;
    OK(hakuban_listener_new(&l, up, &lo)); /* back on the same port */
    CHECK(WAIT_FLAG(&s.saw_connected, LINK_MS));
    CHECK(atomic_load(&s.wrong_thread) == 0);

    /* A replacement registration ends the first one: its drop runs once. */
    struct status_cb s2 = {.last_state = -1, .c = s.c, .registering_thread = pthread_self()};
    OK(hakuban_connector_set_callback(s.c, status_cb, &s2, status_drop));
    CHECK(atomic_load(&s.drops) == 1);
    atomic_store(&s.dropped, 1);
    CHECK(WAIT_FLAG(&s2.saw_connected, LINK_MS)); /* called once after registering */

    OK(hakuban_connector_drop(s.c));
    atomic_store(&s2.dropped, 1);
    CHECK(atomic_load(&s2.drops) == 1);
    long before = atomic_load(&s2.calls);
    int64_t until = now_ms() + 5; /* a wrongly late call would show up */
    while (now_ms() < until) {
    }
    CHECK(atomic_load(&s2.calls) == before);
    CHECK(atomic_load(&s.late) == 0 && atomic_load(&s2.late) == 0);
    CHECK(atomic_load(&s.drops) == 1 && atomic_load(&s2.drops) == 1);
    fprintf(stderr, "  %ld + %ld status callback calls\n", (long)atomic_load(&s.calls), (long)before);

    struct status_cb s3 = {0};
    CHECK_ERR(hakuban_connector_set_callback(s.c, status_cb, &s3, status_drop), HAKUBAN_ERR_INVALID_HANDLE, "");
    CHECK(atomic_load(&s3.drops) == 0);

    OK(hakuban_listener_drop(l));
    OK(hakuban_exchange_drop(down));
    OK(hakuban_exchange_drop(up));
}

/* ---- permissions ---- */

static hakuban_connector connect_with_token(hakuban_exchange ex, const char *url, const char *token) {
    hakuban_connector_options o;
    fast_options(&o);
    o.token = token;
    o.token_len = strlen(token);
    hakuban_connector c = 0;
    OK(hakuban_connector_new(&c, ex, &url, 1, &o));
    expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);
    return c;
}

/* Waits up to LINK_MS for next to fail with HAKUBAN_ERR_REFUSED (states may
 * come first: the last one, no longer synchronized). */
static void expect_refused(hakuban_object_observe_contract c) {
    int64_t deadline = now_ms() + LINK_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) FAIL("no refusal within %d ms", LINK_MS);
        hakuban_object_state st = 0;
        int32_t rc = hakuban_object_observe_contract_next(&st, c, left);
        if (rc == HAKUBAN_TIMEOUT) continue;
        if (rc == HAKUBAN_ERR_REFUSED) return;
        OK(rc);
        OK(hakuban_object_state_drop(st));
    }
}

#define WRITER "{\"name\": \"writer\", \"token\": \"w\", \"observe\": \"*\", \"expose\": \"*\"}"

/* A listener with rules (hakuban_listener_new_with_auth): the reader may
 * observe tag "public" only. hakuban_listener_set_auth then takes that from the reader on its
 * open link, rejects bad JSON keeping the rules, and finally drops the
 * reader's token, which disconnects it for good. */
static void test_listener_auth(void) {
    hakuban_exchange up = named_exchange("up"), writer = named_exchange("writer"),
                     reader = named_exchange("reader");
    hakuban_listener_options lo;
    hakuban_listener_options_init(&lo);
    lo.address = "127.0.0.1:0";
    hakuban_listener l = 0;
    CHECK_ERR(hakuban_listener_new_with_auth(&l, up, &lo, "{\"clients\": [{\"name\": \"x\"}]}"),
              HAKUBAN_ERR_INVALID_CONFIG, "auth_json");
    CHECK(l == 0);
    OK(hakuban_listener_new_with_auth(&l, up, &lo,
                                      "{\"clients\": [" WRITER ", {\"name\": \"reader\", \"token\": \"r\", "
                                      "\"observe\": {\"tags\": [\"public\"]}}]}"));
    char url[256];
    url_of(l, url, sizeof url);
    hakuban_connector cw = connect_with_token(writer, url, "w");
    hakuban_connector cr = connect_with_token(reader, url, "r");

    hakuban_object_descriptor pub = make_object("\"pub\"", "\"public\""),
                              priv = make_object("\"priv\"", "\"private\"");
    hakuban_object_expose_contract exp = 0;
    hakuban_object_observe_contract obs = 0, denied = 0;
    OK(hakuban_object_expose_contract_new(&exp, writer, pub, 1));
    OK(hakuban_object_observe_contract_new(&obs, reader, pub));
    OK(hakuban_object_observe_contract_new(&denied, reader, priv));
    hakuban_object_state_sink sink = 0;
    OK(hakuban_object_expose_contract_next(&sink, exp, LINK_MS));
    send_text(sink, 1, "for everyone");
    expect_text(obs, "for everyone");
    hakuban_object_state st = 0;
    CHECK_RC(hakuban_object_observe_contract_next(&st, denied, LINK_MS), HAKUBAN_ERR_REFUSED);

    /* Narrower rules apply to the open link at once. */
    OK(hakuban_listener_set_auth(l, "{\"clients\": [" WRITER ", {\"name\": \"reader\", \"token\": \"r\"}]}"));
    expect_refused(obs);
    int32_t status = -1;
    OK(hakuban_object_observe_contract_status(&status, obs));
    CHECK(status == HAKUBAN_STATUS_REFUSED);
    CHECK_ERR(hakuban_listener_set_auth(l, "{\"clients\": 7}"), HAKUBAN_ERR_INVALID_CONFIG, "auth_json");
    CHECK_ERR(hakuban_listener_set_auth(0, NULL), HAKUBAN_ERR_INVALID_HANDLE, "");

    /* The reader's token goes: its link closes with 4002, not retried; the
     * writer's stays. */
    OK(hakuban_listener_set_auth(l, "{\"clients\": [" WRITER "]}"));
    expect_connector(cr, HAKUBAN_CONNECTOR_REFUSED);
    char *err = NULL;
    OK(hakuban_connector_last_error(&err, cr));
    CHECK(err != NULL && strstr(err, "4002") != NULL);
    hakuban_string_free(err);
    hakuban_connector_status_info cs;
    OK(hakuban_connector_status(&cs, cw));
    CHECK(cs.state == HAKUBAN_CONNECTOR_CONNECTED);

    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_observe_contract_drop(denied));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_descriptor_drop(priv));
    OK(hakuban_object_descriptor_drop(pub));
    OK(hakuban_connector_drop(cr));
    OK(hakuban_connector_drop(cw));
    OK(hakuban_listener_drop(l));
    OK(hakuban_exchange_drop(reader));
    OK(hakuban_exchange_drop(writer));
    OK(hakuban_exchange_drop(up));
}
#undef WRITER

static const test_case tests[] = {
    T(test_options_init),
    T(test_listen_connect_observe),
    T(test_tags_over_the_link),
    T(test_connector_status_through_reconnect),
    T(test_wait_any_change_sees_every_state),
    T(test_status_fd),
    T(test_status_fd_made_late),
    T(test_connector_callback),
    T(test_url_list_fails_over),
    T(test_drop_wakes_wait),
    T(test_exchange_drop_closes_connector),
    T(test_second_connector_refused),
    T(test_bad_urls_and_options),
    T(test_listener_bind_failure),
    T(test_listener_auth),
    T(test_tls),
};

RUN_TESTS(tests)
