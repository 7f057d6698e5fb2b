/*
 * test_router.c — integration through a real router process: starts
 * hakuban-router ($HAKUBAN_ROUTER) with --listen 127.0.0.1:0 --addr-file,
 * reads the address it bound, and links exchanges to it:
 *
 *   - two exchanges of this process (an exposer and an observer): a state
 *     arrives, the link survives the router being restarted on the same
 *     port (both reconnect, contracts are declared again, states flow again);
 *   - the example programs ($HAKUBAN_EXAMPLE_EXPOSER,
 *     $HAKUBAN_EXAMPLE_OBSERVER) as two processes: the observer prints the
 *     exposer's readings and exits 0;
 *   - a router with --auth-file: a contract outside the token's permissions
 *     is refused (HAKUBAN_ERR_REFUSED once, status REFUSED), an allowed one
 *     works.
 *
 * The router is stopped at the end of every test, and also when a test
 * fails (process.h stops every child at exit; PR_SET_PDEATHSIG covers a
 * crash). CMake builds the router and sets the variables.
 */
#include "testutil.h"

#include "process.h"

#define LINK_MS 15000

static struct {
    pid_t pid;
    char dir[256];
    char addr_file[300];
    char auth_file[300]; /* --auth-file when not empty */
    char listen[128];    /* what to pass to --listen */
    char url[128];
} router;

static const char *env_program(const char *name) {
    const char *p = getenv(name);
    if (!executable(p)) FAIL("$%s must name an executable (CMake sets it; got \"%s\")", name, p ? p : "");
    return p;
}

/* Starts the router on router.listen and waits (polling, with a deadline)
 * until it has written the address it bound. */
static void start_router(void) {
    const char *path = env_program("HAKUBAN_ROUTER");
    unlink(router.addr_file);
    const char *argv[] = {path, "--listen", router.listen, "--addr-file", router.addr_file,
                          "--name", "test-router", NULL, NULL, NULL};
    if (router.auth_file[0]) {
        argv[7] = "--auth-file";
        argv[8] = router.auth_file;
    }
    router.pid = start_child(argv, NULL);
    int64_t deadline = now_ms() + 30000;
    char buf[100];
    for (;;) {
        int status = 0;
        if (wait_child(router.pid, 0, &status))
            FAIL("the router exited before binding (wait status %#x)", status);
        if (read_file(router.addr_file, buf, sizeof buf) && strchr(buf, '\n') != NULL) break;
        if (now_ms() > deadline) FAIL("the router wrote no address file within 30 s");
        sleep_ms(5);
    }
    *strchr(buf, '\n') = 0;
    snprintf(router.url, sizeof router.url, "ws://%s/", buf);
    snprintf(router.listen, sizeof router.listen, "%s", buf); /* a restart binds the same port */
    fprintf(stderr, "  router %d at %s\n", (int)router.pid, router.url);
}

/* Stops the router with SIGTERM: it shuts down gracefully and exits 0. */
static void stop_router(void) {
    int status = stop_child(router.pid);
    router.pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("the router did not exit 0 after SIGTERM (wait status %#x)", status);
}

/* Starts a router; with auth_json, it loads that as its --auth-file. */
static void setup_auth(const char *auth_json) {
    make_temp_dir(router.dir, sizeof router.dir, "hakuban-router-test");
    snprintf(router.addr_file, sizeof router.addr_file, "%s/addr", router.dir);
    snprintf(router.listen, sizeof router.listen, "127.0.0.1:0");
    router.auth_file[0] = 0;
    if (auth_json != NULL) {
        snprintf(router.auth_file, sizeof router.auth_file, "%s/auth.json", router.dir);
        FILE *f = fopen(router.auth_file, "w");
        if (f == NULL || fputs(auth_json, f) < 0 || fclose(f) != 0) FAIL("writing %s", router.auth_file);
    }
    start_router();
}

static void setup(void) { setup_auth(NULL); }

static void teardown(void) {
    stop_router();
    remove_temp_dir(router.dir);
}

static hakuban_exchange named_exchange(const char *name) {
    hakuban_exchange_options o;
    hakuban_exchange_options_init(&o);
    o.name = name;
    hakuban_exchange ex = 0;
    OK(hakuban_exchange_new(&ex, &o));
    return ex;
}

static hakuban_connector connect_router_token(hakuban_exchange ex, const char *token) {
    hakuban_connector_options o;
    hakuban_connector_options_init(&o);
    if (token != NULL) {
        o.token = token;
        o.token_len = strlen(token);
    }
    o.min_backoff_ms = 20; /* the router restart below should not wait long */
    o.max_backoff_ms = 200;
    const char *url = router.url;
    hakuban_connector c = 0;
    OK(hakuban_connector_new(&c, ex, &url, 1, &o));
    return c;
}

static hakuban_connector connect_router(hakuban_exchange ex) { return connect_router_token(ex, NULL); }

static hakuban_connector_status_info expect_connector(hakuban_connector c, int32_t state) {
    hakuban_connector_status_info st;
    int32_t rc = hakuban_connector_wait(&st, c, state, LINK_MS);
    if (rc != HAKUBAN_OK) {
        char *err = NULL;
        hakuban_connector_last_error(&err, c);
        FAIL("connector did not reach state %d: rc %d, state %d, last error: %s", (int)state,
             (int)rc, (int)st.state, err ? err : "(none)");
    }
    return st;
}

/* Waits for a state with the given version; returns whether it is
 * synchronized. */
static bool expect_version(hakuban_object_observe_contract c, int64_t version, const char *text) {
    int64_t deadline = now_ms() + LINK_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) FAIL("no state version %" PRId64 " within %d ms", version, LINK_MS);
        hakuban_object_state st = 0;
        int32_t rc = hakuban_object_observe_contract_next(&st, c, left);
        if (rc == HAKUBAN_TIMEOUT) continue;
        OK(rc);
        bool sync = false;
        OK(hakuban_object_state_synchronized(&sync, st));
        bool match = state_version(st) == version;
        if (match && text != NULL) {
            char buf[64];
            size_t n = 0;
            OK(hakuban_object_state_data_copy(buf, sizeof buf - 1, &n, st));
            buf[n] = 0;
            CHECK(strcmp(buf, text) == 0);
        }
        OK(hakuban_object_state_drop(st));
        if (match) return sync;
    }
}

static void test_exchanges_through_router(void) {
    setup();
    hakuban_exchange up = named_exchange("c-exposer"), down = named_exchange("c-observer");
    hakuban_connector cu = connect_router(up), cd = connect_router(down);
    expect_connector(cu, HAKUBAN_CONNECTOR_CONNECTED);
    expect_connector(cd, HAKUBAN_CONNECTOR_CONNECTED);

    hakuban_object_descriptor d = make_object("{\"via\":\"router\"}", "\"tests\"");
    hakuban_object_expose_contract exp = 0;
    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_expose_contract_new(&exp, up, d, 1));
    OK(hakuban_object_observe_contract_new(&obs, down, d));
    hakuban_object_state_sink sink = 0;
    OK(hakuban_object_expose_contract_next(&sink, exp, LINK_MS)); /* elected through the router */
    send_text(sink, 1, "through the router");
    CHECK(expect_version(obs, 1, "through the router"));

    /* the router goes away: the observer's state goes stale, the exposer's
     * assignment ends, both connectors keep trying */
    stop_router();
    CHECK(!expect_version(obs, 1, NULL));
    CHECK_RC(hakuban_object_state_sink_next(sink, LINK_MS), HAKUBAN_END);
    OK(hakuban_object_state_sink_drop(sink));
    expect_connector(cu, HAKUBAN_CONNECTOR_DISCONNECTED);

    /* it comes back (on the same port, but knowing nothing): both
     * reconnect and declare their contracts again, the exposer is assigned
     * again and its next state arrives */
    start_router();
    hakuban_connector_status_info st = expect_connector(cu, HAKUBAN_CONNECTOR_CONNECTED);
    CHECK(st.connects == 2);
    st = expect_connector(cd, HAKUBAN_CONNECTOR_CONNECTED);
    CHECK(st.connects == 2);
    OK(hakuban_object_expose_contract_next(&sink, exp, LINK_MS));
    send_text(sink, 2, "after a restart");
    CHECK(expect_version(obs, 2, "after a restart"));

    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_connector_drop(cd));
    OK(hakuban_connector_drop(cu));
    OK(hakuban_exchange_drop(down));
    OK(hakuban_exchange_drop(up));
    teardown();
}

static void test_example_programs_through_router(void) {
    if (getenv("HAKUBAN_EXAMPLE_EXPOSER") == NULL) {
        fprintf(stderr, "  SKIPPED: the examples were not built (HAKUBAN_BUILD_EXAMPLES=OFF)\n");
        return;
    }
    const char *exposer = env_program("HAKUBAN_EXAMPLE_EXPOSER");
    const char *observer = env_program("HAKUBAN_EXAMPLE_OBSERVER");
    setup();
    char out[300];
    snprintf(out, sizeof out, "%s/observer.out", router.dir);

    const char *eargv[] = {exposer, router.url, NULL};
    pid_t e = start_child(eargv, NULL); /* its lines go to this test's stdout */
    const char *oargv[] = {observer, router.url, "3", NULL};
    pid_t o = start_child(oargv, out);

    int status = 0;
    if (!wait_child(o, 60000, &status)) FAIL("the observer did not get 3 readings within 60 s");
    char text[8192];
    CHECK(read_file(out, text, sizeof text));
    fprintf(stderr, "  observer's output:\n%s", text);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(text, "observer: connected to ") != NULL);
    CHECK(strstr(text, "observer: kitchen is {\"celsius\":") != NULL);
    CHECK(strstr(text, "observer: done after 3 readings") != NULL);

    /* the exposer runs until stopped (Ctrl-C, here SIGTERM) */
    int est = stop_child(e);
    CHECK(WIFSIGNALED(est) && WTERMSIG(est) == SIGTERM);
    teardown();
}

static void test_refused_by_permissions(void) {
    setup_auth("{\"clients\": [{\"name\": \"c-reader\", \"token\": \"c-token\","
               " \"observe\": {\"tags\": [\"public\"]}}]}");
    hakuban_exchange ex = named_exchange("c-reader");
    hakuban_connector c = connect_router_token(ex, "c-token");
    expect_connector(c, HAKUBAN_CONNECTOR_CONNECTED);

    hakuban_object_descriptor secret = make_object("\"secret\"", "\"private\"");
    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_observe_contract_new(&obs, ex, secret));
    hakuban_object_state st = 1;
    CHECK_RC(hakuban_object_observe_contract_next(&st, obs, LINK_MS), HAKUBAN_ERR_REFUSED);
    CHECK(st == 0);
    const char *msg = hakuban_last_error_message();
    fprintf(stderr, "  refusal: %s\n", msg);
    CHECK(strstr(msg, "permission denied") != NULL && strstr(msg, "c-reader") != NULL);
    int32_t status = -1;
    OK(hakuban_object_observe_contract_status(&status, obs));
    CHECK(status == HAKUBAN_STATUS_REFUSED);
    /* reported once; the contract stays open */
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, obs), HAKUBAN_EMPTY);

    /* exposing is not allowed either */
    hakuban_object_descriptor pub = make_object("\"pub\"", "\"public\"");
    hakuban_object_expose_contract exp = 0;
    OK(hakuban_object_expose_contract_new(&exp, ex, pub, 1));
    hakuban_object_state_sink sink = 0;
    CHECK_RC(hakuban_object_expose_contract_next(&sink, exp, LINK_MS), HAKUBAN_ERR_REFUSED);
    OK(hakuban_object_expose_contract_status(&status, exp));
    CHECK(status == HAKUBAN_STATUS_REFUSED);

    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_descriptor_drop(pub));
    OK(hakuban_object_descriptor_drop(secret));
    OK(hakuban_connector_drop(c));
    OK(hakuban_exchange_drop(ex));
    teardown();
}

static const test_case tests[] = {
    T(test_exchanges_through_router),
    T(test_example_programs_through_router),
    T(test_refused_by_permissions),
};

RUN_TESTS(tests)
