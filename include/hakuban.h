/*
 * hakuban.h — the C interface of libhakuban, the only public header.
 *
 * hakuban lets processes EXPOSE data objects and lets other processes OBSERVE
 * them. An object is a shared variable named by JSON (an object descriptor:
 * a JSON value plus a set of JSON tags). Exactly one exposer writes it, any
 * number of observers read its newest state. It is last-value state sharing,
 * not messaging: a slow observer skips versions, it never gets a backlog.
 *
 * Everything happens through four CONTRACTS made on an EXCHANGE:
 *
 *   object observe (descriptor)       "I want this object"
 *       -> receives object states
 *   object expose  (descriptor, cap.) "I can produce this object"
 *       -> receives a sink (an assignment) while it must produce
 *   tag observe    (tag)              "I want every live object with this tag"
 *       -> receives object events (descriptor + state, or "gone")
 *   tag expose     (tag, capacity)    "I can produce any object with this tag"
 *       -> receives one sink per object it must produce
 *
 * A sink (hakuban_object_state_sink) lets its holder send states,
 * desynchronize the object and read its current state, until the exchange
 * revokes it.
 *
 * ---------------------------------------------------------------------------
 * CONVENTIONS (they hold for every function below unless its comment says
 * otherwise)
 *
 * Results. Functions return int32_t codes from enum hakuban_result: 0 is
 * success, negative values are errors, positive values are stream states
 * (HAKUBAN_EMPTY, HAKUBAN_END, HAKUBAN_TIMEOUT). After a negative result,
 * hakuban_last_error_message() on the same thread says what went wrong.
 * Every function may return HAKUBAN_ERR_INTERNAL (a bug in hakuban, caught
 * before it could harm the host process); the per-function lists below do
 * not repeat it.
 *
 * Handles. Library objects are named by opaque 64-bit handles from the
 * library's own table. 0 is never a valid handle. A handle that is 0,
 * unknown, of the wrong kind (an exchange where a contract is expected),
 * or already dropped (stale) makes the call return HAKUBAN_ERR_INVALID_HANDLE
 * with a message; it never crashes the process. Every handle the library
 * gives you must be released with its _drop function exactly once;
 * _drop(0) is a no-op returning HAKUBAN_OK, dropping a stale handle returns
 * HAKUBAN_ERR_INVALID_HANDLE.
 *
 * Outputs come first and are named out (out_...). Output pointers must not
 * be NULL (HAKUBAN_ERR_INVALID_ARGUMENT). On an error, outputs are left
 * untouched unless stated.
 *
 * Bytes in are (pointer, length) and are copied: the caller keeps ownership.
 * Bytes out are owned by a library handle and stay valid until that handle
 * is dropped, or are copied into a caller buffer (..._copy functions).
 *
 * Threads. Every function may be called from any thread, concurrently, on
 * the same or different handles. Dropping a handle while another thread is
 * still using it is allowed (the other call finishes or returns an error),
 * but pointers obtained from a handle's accessors become invalid when it is
 * dropped.
 *
 * Waiting. Every stream-like handle (the four contracts and sinks) offers
 * three ways to wait, usable together:
 *   _try_next(out, h)            never blocks; HAKUBAN_EMPTY when nothing is
 *                                pending;
 *   _next(out, h, timeout_ms)    blocks up to timeout_ms (negative: forever);
 *                                HAKUBAN_TIMEOUT when nothing came;
 *   _fd(out, h)                  a file descriptor for poll/select/epoll that
 *                                is readable while something is pending or
 *                                the stream has ended. It stops being
 *                                readable when a _try_next or _next call
 *                                finds nothing pending. So: wait for
 *                                readable, call _try_next until it returns
 *                                HAKUBAN_EMPTY (or HAKUBAN_END), wait again.
 *                                A wake-up is never lost; after the last item
 *                                was taken the fd may stay readable until
 *                                that HAKUBAN_EMPTY.
 * plus an optional callback (_set_callback, see hakuban_notify_fn).
 * A connector's status is waited on the same three ways:
 * hakuban_connector_status (never blocks), hakuban_connector_wait (with a
 * timeout) and hakuban_connector_status_fd (readable while the status
 * changed since you last read it).
 * A contract's _close(h) ends its stream: every blocked _next in any thread
 * returns HAKUBAN_END at once, the fd becomes readable, the handle stays
 * valid until dropped. _drop closes and releases the handle (a sink's _drop
 * releases only the handle; its stream ends when the exchange revokes it).
 *
 * Refusal. When the network refuses a contract (a router's token
 * permissions), the contract's _try_next and _next return
 * HAKUBAN_ERR_REFUSED once (*out set to 0; hakuban_last_error_message()
 * says who refused it and why), its fd becomes readable for that, and its
 * _status is HAKUBAN_STATUS_REFUSED. The contract stays open (anything
 * local still arrives) until closed; a later reconnect asks again.
 *
 * Process caveats.
 *   - Do not use the library in a child process forked after the library was
 *     loaded: the Go runtime's threads do not survive fork() and the child
 *     hangs. exec() in the child is fine. (Load the library lazily in the
 *     parent, or fork before loading it.)
 *   - The library cannot be unloaded: dlclose() does nothing.
 *   - It never installs SIGINT/SIGTERM (or any asynchronous signal) handlers.
 *     The Go runtime inside does install handlers for SIGSEGV, SIGBUS, SIGFPE
 *     (forwarded to the handler installed before the library was loaded when
 *     the signal arrives in non-Go code), SIGPIPE and SIGURG (goroutine
 *     preemption). A handler for one of these installed after loading must
 *     use SA_ONSTACK and call the one it replaces.
 *   - Loading it starts a few threads and costs about 2 ms.
 * ---------------------------------------------------------------------------
 */
#ifndef HAKUBAN_H
#define HAKUBAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================
 * Versions
 * ======================================================================== */

/** Major version of this header (semantic versioning). */
#define HAKUBAN_VERSION_MAJOR 0
/** Minor version of this header. */
#define HAKUBAN_VERSION_MINOR 1
/** Patch version of this header. */
#define HAKUBAN_VERSION_PATCH 0
/** The version of this header as a string, "MAJOR.MINOR.PATCH". */
#define HAKUBAN_VERSION "0.1.0"
/**
 * ABI version of this header. It is the number in the library's SONAME
 * (libhakuban.so.0) and changes on every incompatible change of the binary
 * interface. A program (or a binding) must refuse to use a library whose
 * hakuban_abi_version() differs from the HAKUBAN_ABI_VERSION it was built
 * against. Additions (new functions, structs, enum values, handle kinds) do
 * not change it.
 *
 * Changes within ABI 0 (additions only):
 *   - the network section: hakuban_connector_* and hakuban_listener_*, with
 *     their handle kinds, options structs and enum hakuban_connector_state.
 *   - hakuban_connector_status_fd (a pollable fd for a connector's status).
 *   - hakuban_listener_new_with_auth and hakuban_listener_set_auth (token
 *     permissions on a listener), hakuban_connector_set_callback.
 */
#define HAKUBAN_ABI_VERSION 0

/**
 * Returns the version of the loaded library, e.g. "0.1.0" (compare with
 * HAKUBAN_VERSION to detect a header/library mismatch). The string is static:
 * never free it. Thread-safe; cannot fail.
 */
const char *hakuban_version(void);

/**
 * Returns the ABI version of the loaded library (compare with
 * HAKUBAN_ABI_VERSION). Thread-safe; cannot fail.
 */
uint32_t hakuban_abi_version(void);

/* ========================================================================
 * Result codes and errors
 * ======================================================================== */

/**
 * Result codes returned as int32_t. 0 is success, positive values are stream
 * states, negative values are errors. The values are part of the ABI and are
 * checked against the Go core's table (core.Codes()) by a test.
 */
enum hakuban_result {
    /** Success. */
    HAKUBAN_OK = 0,
    /** A non-blocking call found nothing pending. */
    HAKUBAN_EMPTY = 1,
    /** The stream ended: its contract was closed (by _close, _drop or
     *  dropping the exchange), or the sink was revoked. Not an error. */
    HAKUBAN_END = 2,
    /** A blocking call's timeout expired with nothing pending. */
    HAKUBAN_TIMEOUT = 3,

    /** An argument is out of range (for example a NULL output pointer). */
    HAKUBAN_ERR_INVALID_ARGUMENT = -1,
    /** A handle is 0, unknown, of the wrong kind, or already dropped. */
    HAKUBAN_ERR_INVALID_HANDLE = -2,
    /** A descriptor is not valid JSON (or is empty). */
    HAKUBAN_ERR_INVALID_DESCRIPTOR = -3,
    /** A descriptor is over the size limit (default 64 KiB). */
    HAKUBAN_ERR_DESCRIPTOR_TOO_LARGE = -4,
    /** An object descriptor has more tags than allowed (default 64). */
    HAKUBAN_ERR_TOO_MANY_TAGS = -5,
    /** An expose contract's capacity is not in 1..2^30. */
    HAKUBAN_ERR_INVALID_CAPACITY = -6,
    /** A state's version is older than the object's current one. */
    HAKUBAN_ERR_STALE_VERSION = -7,
    /** A write went through a revoked assignment (sink). */
    HAKUBAN_ERR_REVOKED = -8,
    /** The exchange was closed (dropped). */
    HAKUBAN_ERR_CLOSED = -9,
    /** A state's format stack does not have the expected encoding on top. */
    HAKUBAN_ERR_WRONG_FORMAT = -10,
    /** A caller buffer is too small; the needed size was stored. */
    HAKUBAN_ERR_BUFFER_TOO_SMALL = -11,
    /** An option is out of range. */
    HAKUBAN_ERR_INVALID_CONFIG = -12,
    /** The network refused a contract (permissions). */
    HAKUBAN_ERR_REFUSED = -13,
    /** A peer broke the wire protocol. */
    HAKUBAN_ERR_PROTOCOL = -14,
    /** A network connection failed. */
    HAKUBAN_ERR_CONNECTION = -15,
    /** A bug in hakuban (a recovered panic); the message says where. */
    HAKUBAN_ERR_INTERNAL = -16
};

/**
 * Returns the message of the last error (negative result) on the calling
 * thread, or "" if there was none. The message is not cleared by successful
 * calls. The string belongs to the library and stays valid until the next
 * hakuban call on the same thread; copy it to keep it. Thread-safe (each
 * thread has its own message); cannot fail.
 */
const char *hakuban_last_error_message(void);

/**
 * Frees a string the library allocated for the caller (only the strings whose
 * documentation says so, such as hakuban_exchange_snapshot's). NULL is
 * ignored. Thread-safe.
 */
void hakuban_string_free(char *s);

/* ========================================================================
 * Callbacks
 * ======================================================================== */

/**
 * A notification callback: "something may be pending on the handle you
 * registered me for (or it ended)". Call that handle's _try_next until it
 * returns HAKUBAN_EMPTY or HAKUBAN_END. A callback can be spurious (nothing
 * pending when you look); it is never missed: anything that becomes pending
 * after a call started causes another call.
 *
 * THE CALLBACK CONTRACT (for every _set_callback and hakuban_log_set_callback):
 *   - It runs on a thread owned by the library, never on the thread that
 *     registered it or inside another hakuban call of yours.
 *   - Callbacks of different handles may run concurrently on different
 *     threads. One registration's callback is never run concurrently with
 *     itself.
 *   - It may call any hakuban function, including _try_next, _set_callback
 *     and _drop on its own handle (re-entrant calls are allowed). It is never
 *     called while the library holds an internal lock.
 *   - No call starts after the registration is replaced, cleared, or its
 *     handle dropped: the function doing that waits for a running call to
 *     return first, so after it returns no callback runs. (Exception: called
 *     from inside the callback itself it cannot wait for itself; the running
 *     call simply finishes.) Do not, from callback A, drop the handle of
 *     callback B while B drops A's handle: each would wait for the other.
 *   - The drop function, if not NULL, runs exactly once per successful
 *     registration, after the last call of the callback has returned and
 *     before the replacing/clearing/dropping function returns (or, when that
 *     function was called from inside the callback, right after the callback
 *     returns, on the callback's thread). Use it to free user_data.
 *   - It should return quickly: the thread it runs on serves only this
 *     registration, but a slow callback delays its own notifications.
 */
typedef void (*hakuban_notify_fn)(void *user_data);

/** Frees user_data of a callback registration; see hakuban_notify_fn. */
typedef void (*hakuban_drop_fn)(void *user_data);

/* ========================================================================
 * Logging
 * ======================================================================== */

/** Log levels, from most to least verbose. */
enum hakuban_log_level {
    /** Details for debugging hakuban itself (exchanges made and dropped...). */
    HAKUBAN_LOG_DEBUG = 0,
    /** Normal events worth a line (links up and down, listening). */
    HAKUBAN_LOG_INFO = 1,
    /** Something unexpected that hakuban recovered from. */
    HAKUBAN_LOG_WARN = 2,
    /** Something failed (including recovered internal errors). */
    HAKUBAN_LOG_ERROR = 3,
    /** Log nothing (only for hakuban_log_set_level). */
    HAKUBAN_LOG_OFF = 4
};

/**
 * A log callback: level is one of enum hakuban_log_level, message one line of
 * text ("msg key=value ...") valid only during the call. It follows the
 * callback contract of hakuban_notify_fn (library thread, re-entrant calls
 * allowed, none after it is replaced or cleared, drop runs once).
 */
typedef void (*hakuban_log_fn)(int32_t level, const char *message, void *user_data);

/**
 * Sets the process-wide log level: records below it are discarded. The
 * default is HAKUBAN_LOG_WARN. Thread-safe.
 *
 * Returns HAKUBAN_OK, or HAKUBAN_ERR_INVALID_ARGUMENT if level is not one of
 * enum hakuban_log_level.
 */
int32_t hakuban_log_set_level(int32_t level);

/**
 * Sends the library's log records (process-wide, from every exchange) to
 * callback instead of standard error. NULL restores the default (one line
 * per record on standard error). Records are queued and delivered in order
 * on one library thread; when the callback cannot keep up, records are
 * dropped and a later record says how many. The previous registration's drop
 * function runs before this returns (see hakuban_notify_fn). On an error
 * user_data stays yours and drop is not called. Thread-safe.
 *
 * Returns HAKUBAN_OK.
 */
int32_t hakuban_log_set_callback(hakuban_log_fn callback, void *user_data, hakuban_drop_fn drop);

/* ========================================================================
 * Handles
 * ======================================================================== */

/** An exchange: the local meeting point of contracts. Drop with
 *  hakuban_exchange_drop. */
typedef uint64_t hakuban_exchange;
/** An object descriptor (JSON value + set of tags). Drop with
 *  hakuban_object_descriptor_drop. */
typedef uint64_t hakuban_object_descriptor;
/** A tag descriptor (a JSON value). Drop with hakuban_tag_descriptor_drop. */
typedef uint64_t hakuban_tag_descriptor;
/** One state of an object. Drop with hakuban_object_state_drop. */
typedef uint64_t hakuban_object_state;
/** An object observe contract. Drop with
 *  hakuban_object_observe_contract_drop. */
typedef uint64_t hakuban_object_observe_contract;
/** An object expose contract. Drop with hakuban_object_expose_contract_drop. */
typedef uint64_t hakuban_object_expose_contract;
/** A tag observe contract. Drop with hakuban_tag_observe_contract_drop. */
typedef uint64_t hakuban_tag_observe_contract;
/** A tag expose contract. Drop with hakuban_tag_expose_contract_drop. */
typedef uint64_t hakuban_tag_expose_contract;
/** An assignment: the right to write one object while elected. Drop with
 *  hakuban_object_state_sink_drop. */
typedef uint64_t hakuban_object_state_sink;
/** A connector: keeps an exchange linked to its upstream (a router or
 *  another process's listener). Drop with hakuban_connector_drop. */
typedef uint64_t hakuban_connector;
/** A listener: accepts downstream links to an exchange on a TCP port. Drop
 *  with hakuban_listener_drop. */
typedef uint64_t hakuban_listener;

/** Contract statuses (the _status functions): why states or assignments are
 *  (not) arriving. */
enum hakuban_status {
    /** Observers receive fresh states; exposers are elected. */
    HAKUBAN_STATUS_ACTIVE = 0,
    /** The object is observed but nobody can expose it. */
    HAKUBAN_STATUS_WAITING_FOR_EXPOSER = 1,
    /** The exposer is not needed: nobody observes its objects. */
    HAKUBAN_STATUS_NO_OBSERVERS = 2,
    /** The object is observed, but another exposer is elected. */
    HAKUBAN_STATUS_STANDBY = 3,
    /** An exposer is elected but the state is missing or not synchronized. */
    HAKUBAN_STATUS_STALE = 4,
    /** A tag observer with no live object carrying its tag. */
    HAKUBAN_STATUS_IDLE = 5,
    /** The contract was closed. */
    HAKUBAN_STATUS_CLOSED = 6,
    /** The network refused the contract (permissions). */
    HAKUBAN_STATUS_REFUSED = 7
};

/* ========================================================================
 * Exchange
 * ======================================================================== */

/**
 * Options of hakuban_exchange_new. Always start with
 * hakuban_exchange_options_init, then change what you need: fields may be
 * added in later versions (with a new HAKUBAN_ABI_VERSION).
 */
typedef struct hakuban_exchange_options {
    /** Name of the exchange in snapshots and logs. NULL means "exchange".
     *  Copied by hakuban_exchange_new. */
    const char *name;
    /** Maximum bytes of canonical JSON of a descriptor (value plus tags),
     *  1 .. 2^30; default 65536. */
    size_t max_descriptor_size;
    /** Maximum number of distinct tags of an object descriptor; default 64. */
    size_t max_tags;
    /** Objects move between exposers while their loads differ by more than
     *  this fraction, 0 < x < 1; default 0.1. */
    double rebalance_threshold;
    /** How often the rebalancer may move objects, in ms, > 0; default 100. */
    int64_t rebalance_interval_ms;
    /** Most objects moved per rebalance interval, > 0; default 64. */
    int32_t max_moves_per_interval;
    /** During a planned move the old exposer keeps its assignment until the
     *  new one has sent a state, or at most this long, in ms, > 0;
     *  default 1000. */
    int64_t handover_timeout_ms;
} hakuban_exchange_options;

/**
 * Fills *out with the default options. NULL is ignored. Thread-safe; cannot
 * fail.
 */
void hakuban_exchange_options_init(hakuban_exchange_options *out);

/**
 * Creates an exchange. options may be NULL for the defaults; it is only read
 * during the call. The caller owns *out and must drop it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_CONFIG if an option is out of range.
 */
int32_t hakuban_exchange_new(hakuban_exchange *out, const hakuban_exchange_options *options);

/**
 * Closes the exchange and releases the handle. Every contract made on it is
 * closed: their blocked _next calls return HAKUBAN_END, their sinks are
 * revoked. The handles of those contracts, sinks, states and descriptors stay
 * valid (and must still be dropped); creating contracts on a dropped exchange
 * is impossible (its handle is stale).
 *
 * Returns HAKUBAN_OK (also for exchange == 0); HAKUBAN_ERR_INVALID_HANDLE if
 * exchange is stale, unknown or of another kind.
 */
int32_t hakuban_exchange_drop(hakuban_exchange exchange);

/**
 * Stores in *out a JSON picture of the exchange: objects (descriptor,
 * liveness, elected exposer, version, size, synchronized), tags, contracts
 * (kind, status, capacity, load) and counters. The string is NUL-terminated
 * and owned by the caller: free it with hakuban_string_free.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_exchange_snapshot(char **out, hakuban_exchange exchange);

/* ========================================================================
 * Descriptors
 *
 * Descriptors are immutable. Identity is by JSON value, not by text:
 * {"a":1,"b":2} and {"b":2, "a":1} are the same; tag order and duplicate tags
 * do not matter. Accessors return the canonical JSON (sorted keys, no white
 * space). Descriptors are checked against the default limits (64 KiB, 64
 * tags) when created and against the exchange's limits when used.
 * ======================================================================== */

/**
 * Creates a tag descriptor from NUL-terminated JSON text, e.g. "\"sensors\""
 * or "{\"room\": 12}". The text is only read during the call. The caller owns
 * *out and must drop it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out or json is NULL;
 * HAKUBAN_ERR_INVALID_DESCRIPTOR if json is not one valid JSON value;
 * HAKUBAN_ERR_DESCRIPTOR_TOO_LARGE.
 */
int32_t hakuban_tag_descriptor_new(hakuban_tag_descriptor *out, const char *json);

/**
 * Stores in *out the tag's canonical JSON, NUL-terminated, owned by the
 * handle: valid until the tag descriptor is dropped.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_descriptor_json(const char **out, hakuban_tag_descriptor tag);

/**
 * Releases a tag descriptor. Contracts made with it keep their own copy.
 *
 * Returns HAKUBAN_OK (also for tag == 0); HAKUBAN_ERR_INVALID_HANDLE if tag
 * is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_tag_descriptor_drop(hakuban_tag_descriptor tag);

/**
 * Creates an object descriptor from NUL-terminated JSON text and tags_len
 * tags, each NUL-terminated JSON text (tags may be NULL when tags_len is 0).
 * Everything is only read during the call. The caller owns *out and must
 * drop it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out or json is NULL, or
 * tags (or one of its first tags_len elements) is NULL while tags_len > 0;
 * HAKUBAN_ERR_INVALID_DESCRIPTOR if the value or a tag is not valid JSON;
 * HAKUBAN_ERR_DESCRIPTOR_TOO_LARGE; HAKUBAN_ERR_TOO_MANY_TAGS.
 */
int32_t hakuban_object_descriptor_new(hakuban_object_descriptor *out, const char *json,
                                      const char *const *tags, size_t tags_len);

/**
 * Stores in *out the canonical JSON of the descriptor's value (without the
 * tags), NUL-terminated, owned by the handle: valid until it is dropped.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_descriptor_json(const char **out, hakuban_object_descriptor descriptor);

/**
 * Stores in *out the descriptor's identity: the canonical JSON
 * {"json":<value>,"tags":[<tag>,...]} with tags sorted. Two descriptors name
 * the same object exactly when their keys are equal, so it can be used as a
 * hash-table key. NUL-terminated, owned by the handle: valid until it is
 * dropped.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_descriptor_key(const char **out, hakuban_object_descriptor descriptor);

/**
 * Stores in *out the number of distinct tags of the descriptor.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_descriptor_tag_count(size_t *out, hakuban_object_descriptor descriptor);

/**
 * Stores in *out the canonical JSON of the index-th tag (tags are sorted by
 * their canonical JSON), NUL-terminated, owned by the handle: valid until it
 * is dropped.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL or index is
 * not below the tag count; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_descriptor_tag_json(const char **out, hakuban_object_descriptor descriptor,
                                           size_t index);

/**
 * Releases an object descriptor, and the strings its accessors returned.
 * Contracts made with it keep their own copy.
 *
 * Returns HAKUBAN_OK (also for descriptor == 0); HAKUBAN_ERR_INVALID_HANDLE
 * if it is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_object_descriptor_drop(hakuban_object_descriptor descriptor);

/* ========================================================================
 * Object states
 *
 * A state is: data (bytes the library never interprets), format (a stack of
 * short strings naming the encodings applied, innermost first, e.g. ["JSON"]
 * or ["JSON","zstd"]), version (a sequence of int64 compared
 * lexicographically: [1,5] < [1,6] < [2], a prefix is smaller) and
 * synchronized (whether it is the current truth from a live exposer).
 * States are immutable.
 * ======================================================================== */

/**
 * Creates a state to send through a sink. version (version_len numbers) may
 * be NULL/0: the sink then makes a version greater than the object's current
 * one that tracks the wall clock. format is an array of format_len
 * NUL-terminated strings (NULL when format_len is 0). data (data_len bytes)
 * may be NULL when data_len is 0. Everything is copied. The caller owns *out
 * and must drop it; sending does not consume it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL, or a
 * pointer is NULL while its length is not 0, or a format string is NULL.
 */
int32_t hakuban_object_state_new(hakuban_object_state *out, const int64_t *version,
                                 size_t version_len, const char *const *format, size_t format_len,
                                 const void *data, size_t data_len);

/**
 * Creates a state whose data is the canonical form of the NUL-terminated
 * JSON text json and whose format is ["JSON"] (the JSON helper of SPEC 2.3).
 * version as for hakuban_object_state_new. The caller owns *out.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out or json is NULL, or
 * json is not valid JSON, or version is NULL while version_len is not 0.
 */
int32_t hakuban_object_state_new_json(hakuban_object_state *out, const int64_t *version,
                                      size_t version_len, const char *json);

/**
 * Stores in *out a pointer to the state's version numbers and in *out_len
 * their count (0 for a state created without a version; *out is then NULL).
 * The array is owned by the handle: valid until the state is dropped.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out or out_len is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_version(const int64_t **out, size_t *out_len,
                                     hakuban_object_state state);

/**
 * Stores in *out the number of entries of the state's format stack.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_format_count(size_t *out, hakuban_object_state state);

/**
 * Stores in *out the index-th entry of the format stack (0 is the innermost
 * encoding, format_count-1 the outermost), NUL-terminated, owned by the
 * handle: valid until the state is dropped.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL or index is
 * not below the format count; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_format(const char **out, hakuban_object_state state, size_t index);

/**
 * Stores in *out a pointer to the state's data and in *out_len its length
 * (*out is NULL when the length is 0). The bytes are owned by the handle:
 * valid until the state is dropped. The first call copies the data into
 * memory owned by the handle; for large payloads prefer
 * hakuban_object_state_data_copy, which copies once, into your buffer.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out or out_len is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_data(const void **out, size_t *out_len, hakuban_object_state state);

/**
 * Stores in *out the length of the state's data in bytes.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_data_len(size_t *out, hakuban_object_state state);

/**
 * Copies the state's data into the caller's buffer out of out_capacity bytes
 * and stores its length in *out_len. When the buffer is too small nothing is
 * copied, *out_len is set to the needed size and HAKUBAN_ERR_BUFFER_TOO_SMALL
 * is returned (so out may be NULL with out_capacity 0 to ask for the size).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_BUFFER_TOO_SMALL; HAKUBAN_ERR_INVALID_ARGUMENT
 * if out_len is NULL, or out is NULL while out_capacity is not 0;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_data_copy(void *out, size_t out_capacity, size_t *out_len,
                                       hakuban_object_state state);

/**
 * Stores in *out whether the state is synchronized: the current truth from a
 * live exposer. States received by observers carry it; states you created
 * are not synchronized (a sink marks what it publishes synchronized).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_synchronized(bool *out, hakuban_object_state state);

/**
 * Stores in *out how many milliseconds ago a not-synchronized state was last
 * synchronized, measured now (it grows while you hold the state); 0 for a
 * synchronized state or when unknown.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_unsynchronized_ms(int64_t *out, hakuban_object_state state);

/**
 * The JSON helper for reading: if the outermost format is "JSON", stores in
 * *out the data (NUL-terminated JSON text owned by the handle, valid until
 * the state is dropped) and in *out_len its length without the NUL.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_WRONG_FORMAT if the outermost format is not
 * "JSON"; HAKUBAN_ERR_INVALID_ARGUMENT if out or out_len is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_json(const char **out, size_t *out_len, hakuban_object_state state);

/**
 * Releases a state and every pointer its accessors returned.
 *
 * Returns HAKUBAN_OK (also for state == 0); HAKUBAN_ERR_INVALID_HANDLE if it
 * is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_object_state_drop(hakuban_object_state state);

/* ========================================================================
 * Object observe contract: "I want this object"
 *
 * Makes the object live and receives its newest state whenever it changes
 * (new data, or only its synchronized flag). At most one state is pending:
 * a slow reader skips versions, versions never go backwards.
 * ======================================================================== */

/**
 * Makes an object observe contract on exchange for descriptor (borrowed: the
 * contract keeps its own copy). The caller owns *out and must drop it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE (exchange or descriptor);
 * HAKUBAN_ERR_DESCRIPTOR_TOO_LARGE, HAKUBAN_ERR_TOO_MANY_TAGS (over the
 * exchange's limits); HAKUBAN_ERR_CLOSED if the exchange is closing.
 */
int32_t hakuban_object_observe_contract_new(hakuban_object_observe_contract *out,
                                            hakuban_exchange exchange,
                                            hakuban_object_descriptor descriptor);

/**
 * Takes the pending state without waiting: stores a new state handle in *out
 * (owned by the caller: drop it).
 *
 * Returns HAKUBAN_OK; HAKUBAN_EMPTY if no new state is pending (*out is set
 * to 0); HAKUBAN_END once the contract is closed (*out set to 0);
 * HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_observe_contract_try_next(hakuban_object_state *out,
                                                 hakuban_object_observe_contract contract);

/**
 * Waits up to timeout_ms milliseconds (negative: forever; 0: do not wait) for
 * a new state and stores its handle in *out (owned by the caller). Returns at
 * once with HAKUBAN_END when the contract is closed or dropped from another
 * thread.
 *
 * Returns HAKUBAN_OK; HAKUBAN_TIMEOUT (*out set to 0); HAKUBAN_END (*out set
 * to 0); HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_observe_contract_next(hakuban_object_state *out,
                                             hakuban_object_observe_contract contract,
                                             int64_t timeout_ms);

/**
 * Stores in *out a file descriptor that is readable while a state is pending
 * or the contract is closed (see "Waiting" at the top). The fd belongs to
 * the handle: do not read, write or close it; it is closed when the handle is
 * dropped (so stop polling it first). Every call returns the same fd.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE; HAKUBAN_ERR_INTERNAL if the system is out of
 * file descriptors.
 */
int32_t hakuban_object_observe_contract_fd(int *out, hakuban_object_observe_contract contract);

/**
 * Registers callback, called when a state may be pending or the contract
 * ended (see hakuban_notify_fn for the full contract). Replaces (and drops) a
 * previous registration; callback NULL only clears it. Called once soon after
 * registering, so nothing pending before is missed. On an error user_data
 * stays yours and drop is not called.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_observe_contract_set_callback(hakuban_object_observe_contract contract,
                                                     hakuban_notify_fn callback, void *user_data,
                                                     hakuban_drop_fn drop);

/**
 * Stores in *out the object's newest state without consuming it (a new state
 * handle owned by the caller).
 *
 * Returns HAKUBAN_OK; HAKUBAN_EMPTY if the object has no state yet (*out set
 * to 0); HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_observe_contract_current(hakuban_object_state *out,
                                                hakuban_object_observe_contract contract);

/**
 * Stores in *out the contract's status (enum hakuban_status): ACTIVE,
 * WAITING_FOR_EXPOSER, STALE or CLOSED.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_observe_contract_status(int32_t *out,
                                               hakuban_object_observe_contract contract);

/**
 * Stores in *out a new handle to the observed object's descriptor (owned by
 * the caller: drop it).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_observe_contract_descriptor(hakuban_object_descriptor *out,
                                                   hakuban_object_observe_contract contract);

/**
 * Closes the contract: the object is forgotten when nothing else keeps it
 * live, blocked _next calls in every thread return HAKUBAN_END, later ones
 * too, the fd becomes readable. The handle stays valid until dropped.
 * Idempotent.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_observe_contract_close(hakuban_object_observe_contract contract);

/**
 * Closes the contract (as _close), waits for a running callback to return,
 * runs the callback's drop function, closes the fd and releases the handle.
 *
 * Returns HAKUBAN_OK (also for contract == 0); HAKUBAN_ERR_INVALID_HANDLE if
 * it is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_object_observe_contract_drop(hakuban_object_observe_contract contract);

/* ========================================================================
 * Object expose contract: "I can produce this object"
 *
 * Yields a sink only while this contract is elected and somebody observes
 * the object (lazy exposing), so nothing is produced that nobody wants.
 * ======================================================================== */

/**
 * Makes an object expose contract on exchange for descriptor (borrowed) with
 * the given capacity (1..2^30; 1 is typical: how many objects this exposer
 * can carry, weighing elections). The caller owns *out and must drop it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE (exchange or descriptor);
 * HAKUBAN_ERR_INVALID_CAPACITY; HAKUBAN_ERR_DESCRIPTOR_TOO_LARGE,
 * HAKUBAN_ERR_TOO_MANY_TAGS (over the exchange's limits); HAKUBAN_ERR_CLOSED.
 */
int32_t hakuban_object_expose_contract_new(hakuban_object_expose_contract *out,
                                           hakuban_exchange exchange,
                                           hakuban_object_descriptor descriptor, uint32_t capacity);

/**
 * Takes a new assignment without waiting: stores a sink handle in *out (owned
 * by the caller: drop it when the assignment ends or you no longer need it).
 *
 * Returns HAKUBAN_OK; HAKUBAN_EMPTY (*out set to 0); HAKUBAN_END once the
 * contract is closed (*out set to 0); HAKUBAN_ERR_INVALID_ARGUMENT if out is
 * NULL; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_expose_contract_try_next(hakuban_object_state_sink *out,
                                                hakuban_object_expose_contract contract);

/**
 * Waits up to timeout_ms (negative: forever) for a new assignment and stores
 * its sink handle in *out (owned by the caller). Returns at once with
 * HAKUBAN_END when the contract is closed or dropped from another thread.
 *
 * Returns HAKUBAN_OK; HAKUBAN_TIMEOUT (*out set to 0); HAKUBAN_END (*out set
 * to 0); HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_expose_contract_next(hakuban_object_state_sink *out,
                                            hakuban_object_expose_contract contract,
                                            int64_t timeout_ms);

/**
 * Stores in *out a file descriptor readable while an assignment is pending
 * or the contract is closed. Owned by the handle, as for
 * hakuban_object_observe_contract_fd.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE; HAKUBAN_ERR_INTERNAL if out of descriptors.
 */
int32_t hakuban_object_expose_contract_fd(int *out, hakuban_object_expose_contract contract);

/**
 * Registers callback, called when an assignment may be pending or the
 * contract ended; as hakuban_object_observe_contract_set_callback.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_expose_contract_set_callback(hakuban_object_expose_contract contract,
                                                    hakuban_notify_fn callback, void *user_data,
                                                    hakuban_drop_fn drop);

/**
 * Stores in *out the contract's status (enum hakuban_status): ACTIVE while
 * elected, STANDBY while another exposer is elected, NO_OBSERVERS, CLOSED.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_expose_contract_status(int32_t *out,
                                              hakuban_object_expose_contract contract);

/**
 * Stores in *out a new handle to the exposed object's descriptor (owned by
 * the caller).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_expose_contract_descriptor(hakuban_object_descriptor *out,
                                                  hakuban_object_expose_contract contract);

/**
 * Closes the contract: its sink is revoked and the object fails over to
 * another exposer, if any; blocked _next calls return HAKUBAN_END. The handle
 * stays valid until dropped. Idempotent.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_expose_contract_close(hakuban_object_expose_contract contract);

/**
 * Closes the contract (as _close), stops its callback (see hakuban_notify_fn),
 * closes its fd and releases the handle. Sink handles it produced stay valid
 * (their assignments are revoked) and must still be dropped.
 *
 * Returns HAKUBAN_OK (also for contract == 0); HAKUBAN_ERR_INVALID_HANDLE if
 * it is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_object_expose_contract_drop(hakuban_object_expose_contract contract);

/* ========================================================================
 * Tag observe contract: "I want every live object with this tag"
 *
 * Never makes an object live by itself: it sees objects live for another
 * reason. At most one event per object is pending.
 * ======================================================================== */

/**
 * What a tag observe contract delivers: the newest state of one object
 * carrying the tag, or that object's disappearance (gone). Both handles are
 * owned by the caller and must be dropped (state is 0 when gone).
 */
typedef struct hakuban_object_event {
    /** The object's descriptor; drop it. */
    hakuban_object_descriptor descriptor;
    /** The object's newest state; drop it. 0 when gone is true. */
    hakuban_object_state state;
    /** The object is no longer live: no more events for it follow unless it
     *  becomes live again. */
    bool gone;
} hakuban_object_event;

/**
 * Makes a tag observe contract on exchange for tag (borrowed). The caller
 * owns *out and must drop it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE (exchange or tag); HAKUBAN_ERR_CLOSED.
 */
int32_t hakuban_tag_observe_contract_new(hakuban_tag_observe_contract *out,
                                         hakuban_exchange exchange, hakuban_tag_descriptor tag);

/**
 * Takes a pending event without waiting and stores it in *out (its handles
 * are owned by the caller).
 *
 * Returns HAKUBAN_OK; HAKUBAN_EMPTY (*out zeroed); HAKUBAN_END once the
 * contract is closed (*out zeroed); HAKUBAN_ERR_INVALID_ARGUMENT if out is
 * NULL; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_observe_contract_try_next(hakuban_object_event *out,
                                              hakuban_tag_observe_contract contract);

/**
 * Waits up to timeout_ms (negative: forever) for an event and stores it in
 * *out. Returns at once with HAKUBAN_END when the contract is closed or
 * dropped from another thread.
 *
 * Returns HAKUBAN_OK; HAKUBAN_TIMEOUT (*out zeroed); HAKUBAN_END (*out
 * zeroed); HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_observe_contract_next(hakuban_object_event *out,
                                          hakuban_tag_observe_contract contract,
                                          int64_t timeout_ms);

/**
 * Stores in *out a file descriptor readable while an event is pending or the
 * contract is closed. Owned by the handle, as for
 * hakuban_object_observe_contract_fd.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE; HAKUBAN_ERR_INTERNAL if out of descriptors.
 */
int32_t hakuban_tag_observe_contract_fd(int *out, hakuban_tag_observe_contract contract);

/**
 * Registers callback, called when an event may be pending or the contract
 * ended; as hakuban_object_observe_contract_set_callback.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_observe_contract_set_callback(hakuban_tag_observe_contract contract,
                                                  hakuban_notify_fn callback, void *user_data,
                                                  hakuban_drop_fn drop);

/**
 * Stores in *out the contract's status (enum hakuban_status): ACTIVE while
 * some object with the tag is live, IDLE otherwise, CLOSED.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_observe_contract_status(int32_t *out, hakuban_tag_observe_contract contract);

/**
 * Stores in *out a new handle to the observed tag (owned by the caller).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_observe_contract_tag(hakuban_tag_descriptor *out,
                                         hakuban_tag_observe_contract contract);

/**
 * Closes the contract; blocked _next calls return HAKUBAN_END. The handle
 * stays valid until dropped. Idempotent.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_observe_contract_close(hakuban_tag_observe_contract contract);

/**
 * Closes the contract, stops its callback, closes its fd and releases the
 * handle.
 *
 * Returns HAKUBAN_OK (also for contract == 0); HAKUBAN_ERR_INVALID_HANDLE if
 * it is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_tag_observe_contract_drop(hakuban_tag_observe_contract contract);

/* ========================================================================
 * Tag expose contract: "I can produce any object with this tag"
 *
 * Offered only objects that an object observer asks for by full descriptor,
 * one sink per object it is elected for.
 * ======================================================================== */

/**
 * Makes a tag expose contract on exchange for tag (borrowed) with the given
 * capacity (1..2^30). The caller owns *out and must drop it.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE (exchange or tag); HAKUBAN_ERR_INVALID_CAPACITY;
 * HAKUBAN_ERR_CLOSED.
 */
int32_t hakuban_tag_expose_contract_new(hakuban_tag_expose_contract *out,
                                        hakuban_exchange exchange, hakuban_tag_descriptor tag,
                                        uint32_t capacity);

/**
 * Takes a new assignment without waiting: stores a sink handle in *out (owned
 * by the caller).
 *
 * Returns HAKUBAN_OK; HAKUBAN_EMPTY (*out set to 0); HAKUBAN_END once the
 * contract is closed (*out set to 0); HAKUBAN_ERR_INVALID_ARGUMENT if out is
 * NULL; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_expose_contract_try_next(hakuban_object_state_sink *out,
                                             hakuban_tag_expose_contract contract);

/**
 * Waits up to timeout_ms (negative: forever) for a new assignment and stores
 * its sink handle in *out. Returns at once with HAKUBAN_END when the contract
 * is closed or dropped from another thread.
 *
 * Returns HAKUBAN_OK; HAKUBAN_TIMEOUT (*out set to 0); HAKUBAN_END (*out set
 * to 0); HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_expose_contract_next(hakuban_object_state_sink *out,
                                         hakuban_tag_expose_contract contract, int64_t timeout_ms);

/**
 * Stores in *out a file descriptor readable while an assignment is pending
 * or the contract is closed. Owned by the handle, as for
 * hakuban_object_observe_contract_fd.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE; HAKUBAN_ERR_INTERNAL if out of descriptors.
 */
int32_t hakuban_tag_expose_contract_fd(int *out, hakuban_tag_expose_contract contract);

/**
 * Registers callback, called when an assignment may be pending or the
 * contract ended; as hakuban_object_observe_contract_set_callback.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_expose_contract_set_callback(hakuban_tag_expose_contract contract,
                                                 hakuban_notify_fn callback, void *user_data,
                                                 hakuban_drop_fn drop);

/**
 * Stores in *out the contract's status (enum hakuban_status): ACTIVE while
 * elected for some object, NO_OBSERVERS otherwise, CLOSED.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_expose_contract_status(int32_t *out, hakuban_tag_expose_contract contract);

/**
 * Stores in *out a new handle to the exposed tag (owned by the caller).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_expose_contract_tag(hakuban_tag_descriptor *out,
                                        hakuban_tag_expose_contract contract);

/**
 * Closes the contract: its sinks are revoked and their objects fail over;
 * blocked _next calls return HAKUBAN_END. The handle stays valid until
 * dropped. Idempotent.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_tag_expose_contract_close(hakuban_tag_expose_contract contract);

/**
 * Closes the contract, stops its callback, closes its fd and releases the
 * handle. Sink handles it produced stay valid (revoked) and must be dropped.
 *
 * Returns HAKUBAN_OK (also for contract == 0); HAKUBAN_ERR_INVALID_HANDLE if
 * it is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_tag_expose_contract_drop(hakuban_tag_expose_contract contract);

/* ========================================================================
 * Object state sink: an assignment
 *
 * Lets its holder write one object while elected. The exchange revokes it
 * when nobody observes the object any more, when the object moves to another
 * exposer, or when its contract closes; writes through a revoked sink fail
 * with HAKUBAN_ERR_REVOKED (fencing), so a de-elected exposer never
 * overwrites its successor. As a stream, a sink has one event: its end.
 * ======================================================================== */

/**
 * Publishes state (borrowed: you keep it, and may send it again) as the
 * object's newest, synchronized state. A state without a version gets one
 * greater than the current one. The same version as the current one only
 * marks an unsynchronized state synchronized again.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_STALE_VERSION if the state's version is
 * older than the current one; HAKUBAN_ERR_REVOKED if the assignment has
 * ended; HAKUBAN_ERR_INVALID_HANDLE (sink or state).
 */
int32_t hakuban_object_state_sink_send(hakuban_object_state_sink sink, hakuban_object_state state);

/**
 * Marks the object's current state as no longer synchronized (stale, no new
 * data); observers are told. The next send makes it fresh again.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_REVOKED; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_sink_desynchronize(hakuban_object_state_sink sink);

/**
 * Stores in *out the object's newest state (for example the predecessor's
 * last one after a failover), a new handle owned by the caller.
 *
 * Returns HAKUBAN_OK; HAKUBAN_EMPTY if the object has no state (*out set to
 * 0); HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_sink_current(hakuban_object_state *out,
                                          hakuban_object_state_sink sink);

/**
 * Stores in *out the assignment's fencing token; tokens of one object
 * increase with every new assignment.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_sink_token(uint64_t *out, hakuban_object_state_sink sink);

/**
 * Stores in *out a new handle to the descriptor of the object this sink
 * writes (owned by the caller).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_sink_descriptor(hakuban_object_descriptor *out,
                                             hakuban_object_state_sink sink);

/**
 * Checks without waiting whether the assignment has ended.
 *
 * Returns HAKUBAN_EMPTY while the assignment is valid; HAKUBAN_END once it
 * was revoked (stop producing the object); HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_sink_try_next(hakuban_object_state_sink sink);

/**
 * Waits up to timeout_ms (negative: forever) for the assignment to end.
 * Returns at once with HAKUBAN_END when the sink is revoked or dropped from
 * another thread.
 *
 * Returns HAKUBAN_END; HAKUBAN_TIMEOUT while still valid;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_sink_next(hakuban_object_state_sink sink, int64_t timeout_ms);

/**
 * Stores in *out a file descriptor that becomes readable when the assignment
 * ends (and stays readable). Owned by the handle, as for
 * hakuban_object_observe_contract_fd.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE; HAKUBAN_ERR_INTERNAL if out of descriptors.
 */
int32_t hakuban_object_state_sink_fd(int *out, hakuban_object_state_sink sink);

/**
 * Registers callback, called when the assignment ends (and possibly once
 * spuriously after registering); as
 * hakuban_object_observe_contract_set_callback.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_object_state_sink_set_callback(hakuban_object_state_sink sink,
                                               hakuban_notify_fn callback, void *user_data,
                                               hakuban_drop_fn drop);

/**
 * Releases the sink handle: wakes its blocked _next calls (HAKUBAN_END),
 * stops its callback and closes its fd. It does not end the assignment
 * itself: the object stays assigned to the contract until the exchange
 * revokes it (close the contract to give up every object).
 *
 * Returns HAKUBAN_OK (also for sink == 0); HAKUBAN_ERR_INVALID_HANDLE if it
 * is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_object_state_sink_drop(hakuban_object_state_sink sink);

/* ========================================================================
 * Network: connector and listener
 *
 * Exchanges link into a tree (SPEC 3.1): each has at most one upstream,
 * reached through a CONNECTOR, and any number of downstreams, accepted by
 * a LISTENER. A router (the hakuban-router program) is an exchange with a
 * listener and no contracts of its own; two programs can also link directly
 * (one listens, the other connects). Contracts work the same with or
 * without links: an exchange tells its upstream what its contracts observe
 * and expose, elections span the tree, and states flow to whoever observes.
 * Contracts made before the link is up are declared when it comes up, and
 * again after every reconnect. While a link is down, observers behind it
 * see their objects' states marked not synchronized.
 *
 * URLs are ws://host:port/path, or wss:// for TLS. The router and the
 * listener serve the path "/" unless told otherwise.
 * ======================================================================== */

/** What a connector is doing (hakuban_connector_status_info.state). The
 *  values are checked against the Go core's by a test. */
enum hakuban_connector_state {
    /** Dialing an upstream URL, or in the handshake. */
    HAKUBAN_CONNECTOR_CONNECTING = 0,
    /** The link to the upstream is up. */
    HAKUBAN_CONNECTOR_CONNECTED = 1,
    /** The last attempt or link failed (see hakuban_connector_last_error);
     *  waiting (backoff) before the next attempt. */
    HAKUBAN_CONNECTOR_DISCONNECTED = 2,
    /** The connector stopped for good: its exchange was dropped. */
    HAKUBAN_CONNECTOR_CLOSED = 3,
    /** Every upstream URL refused the link for good (unsupported protocol
     *  version, or token refused; see hakuban_connector_last_error). The
     *  connector stopped trying, since trying again would only repeat the
     *  refusal: drop it and make a new one with other options. */
    HAKUBAN_CONNECTOR_REFUSED = 4
};

/**
 * Options of hakuban_connector_new. Always start with
 * hakuban_connector_options_init, then change what you need: fields may be
 * added in later versions (with a new HAKUBAN_ABI_VERSION). Every string and byte field is only read during
 * hakuban_connector_new (copied). A duration of 0 means its default.
 */
typedef struct hakuban_connector_options {
    /** This exchange's name as the upstream sees it (its logs and
     *  snapshots), valid UTF-8 of at most 256 bytes. NULL: the exchange's
     *  own name (hakuban_exchange_options.name). */
    const char *name;
    /** Token sent in the handshake for the upstream to authenticate this
     *  exchange, token_len bytes (at most 4096); NULL and 0 for none. */
    const void *token;
    /** Length of token in bytes. */
    size_t token_len;
    /** Shortest wait between connection attempts, in ms, >= 0; default 100.
     *  After n consecutive failures the wait is random in
     *  [0, min(max_backoff_ms, min_backoff_ms * 2^n)) ("full jitter"). A
     *  link that lasted a second resets n. */
    int64_t min_backoff_ms;
    /** Longest wait between connection attempts, in ms, >= min_backoff_ms
     *  (unless 0); default 10000. */
    int64_t max_backoff_ms;
    /** The connector pings the upstream this often, in ms, >= 0; default
     *  4000. */
    int64_t ping_interval_ms;
    /** A link whose pong takes longer than this (ms, >= 0) is declared dead
     *  and reconnected; default 5000. A dead link is noticed within
     *  ping_interval_ms + ping_timeout_ms. */
    int64_t ping_timeout_ms;
    /** PEM file of certificate authorities that wss:// upstreams are
     *  verified against. NULL: the system's roots. */
    const char *tls_ca_file;
    /** PEM file of a client certificate, for upstreams that require one
     *  (mutual TLS); needs tls_key_file. NULL: none. */
    const char *tls_cert_file;
    /** PEM file of the private key of tls_cert_file. NULL: none. */
    const char *tls_key_file;
} hakuban_connector_options;

/**
 * Fills *out with the default options (every pointer NULL, durations as
 * documented above). NULL is ignored. Thread-safe; cannot fail.
 */
void hakuban_connector_options_init(hakuban_connector_options *out);

/**
 * Links exchange to an upstream: starts a connector that dials the url_count
 * URLs of urls in order of preference, uses the first that answers, fails
 * over to the next when the link is lost (a hot-standby router after the
 * primary), and reconnects forever with capped exponential backoff and full
 * jitter, until it is dropped or its exchange is dropped. It returns at
 * once, in state HAKUBAN_CONNECTOR_CONNECTING: wait for the link with
 * hakuban_connector_wait if you need it up (contracts do not: they are
 * declared whenever it comes up). options may be NULL for the defaults;
 * urls and options are only read during the call. An exchange has at most
 * one connector at a time (one upstream); drop the old one to make another.
 * The caller owns *out and must drop it (before or after the exchange).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL, url_count
 * is 0, urls or one of its first url_count elements is NULL, a URL is not
 * ws://host[:port][/path] or wss://..., token is NULL while token_len is not
 * 0, or the exchange already has a connector; HAKUBAN_ERR_INVALID_HANDLE
 * (exchange); HAKUBAN_ERR_INVALID_CONFIG if an option is out of range or a
 * TLS file cannot be loaded (the message says which and why);
 * HAKUBAN_ERR_CLOSED if the exchange is closing.
 */
int32_t hakuban_connector_new(hakuban_connector *out, hakuban_exchange exchange,
                              const char *const *urls, size_t url_count,
                              const hakuban_connector_options *options);

/** A connector's status at one moment (hakuban_connector_status,
 *  hakuban_connector_wait). */
typedef struct hakuban_connector_status_info {
    /** One of enum hakuban_connector_state. */
    int32_t state;
    /** Links established so far (a reconnect adds one). */
    uint64_t connects;
    /** Consecutive failures: attempts that failed, and links that ended
     *  within a second, since the last link that lasted longer (whose end
     *  resets it to 0). It sets the backoff. */
    uint64_t failures;
} hakuban_connector_status_info;

/**
 * Stores in *out the connector's current status. Never blocks. It counts
 * as reading the status for hakuban_connector_status_fd.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_connector_status(hakuban_connector_status_info *out, hakuban_connector connector);

/**
 * Stores in *out a file descriptor for poll/select/epoll that is readable
 * exactly while the connector's status (state, connects or failures)
 * differs from the one the library last stored in your *out, by
 * hakuban_connector_status or hakuban_connector_wait (before either was
 * called: from a new connector's CONNECTING with no connects and no
 * failures). Reading the status makes it not readable until the next
 * change; a change that happens while you read leaves it readable. Once
 * the connector is CLOSED (its exchange was dropped) it stays readable for
 * good, like the fd of an ended stream. So: wait for readable, call
 * hakuban_connector_status, act on the state, wait again (changes in
 * between coalesce).
 *
 * The fd belongs to the handle: do not read, write or close it; it is
 * closed when the connector is dropped (so stop polling it first; a drop
 * makes it readable just before). Every call returns the same fd.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE; HAKUBAN_ERR_INTERNAL if the system is out of
 * file descriptors.
 */
int32_t hakuban_connector_status_fd(int *out, hakuban_connector connector);

/**
 * Waits up to timeout_ms (negative: forever; 0: only look) for a status,
 * and stores the status it returns with in *out (on HAKUBAN_OK,
 * HAKUBAN_TIMEOUT and HAKUBAN_END alike; that counts as reading the status
 * for hakuban_connector_status_fd).
 *
 * With state one of enum hakuban_connector_state, it waits until the
 * connector is in that state (at once if it already is). With state
 * negative, it waits until the status differs from *out in state, connects
 * or failures: pass the status you last saw (from hakuban_connector_status
 * or the previous wait), so that a change that happened between two calls
 * is not missed:
 *
 *   hakuban_connector_status_info st;
 *   hakuban_connector_status(&st, c);
 *   while (hakuban_connector_wait(&st, c, -1, -1) == HAKUBAN_OK)
 *       printf("state %d\n", st.state);      (changes in between coalesce)
 *
 * No lock is held while it waits: any other call, on any thread, goes on.
 * Dropping the connector from another thread wakes it (HAKUBAN_END).
 *
 * Returns HAKUBAN_OK; HAKUBAN_TIMEOUT; HAKUBAN_END if the connector was
 * dropped, or can no longer reach state: it is CLOSED, or REFUSED and state
 * is neither REFUSED nor CLOSED (with state negative: it is CLOSED and *out
 * says so already); HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL or state is
 * above HAKUBAN_CONNECTOR_REFUSED; HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_connector_wait(hakuban_connector_status_info *out, hakuban_connector connector,
                               int32_t state, int64_t timeout_ms);

/**
 * Stores in *out the upstream URL the connector is connected to, is
 * dialing, or (while DISCONNECTED) failed on last: a NUL-terminated copy
 * owned by the caller, free it with hakuban_string_free.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_connector_url(char **out, hakuban_connector connector);

/**
 * Stores in *out why the last attempt or link ended, e.g. "core: dial
 * ws://127.0.0.1:3001/: connection error (... connect: connection
 * refused)" or "core: peer closed the link: shutting down (close 4004)" (a
 * NUL-terminated copy owned by the caller: free it with
 * hakuban_string_free), or NULL if nothing failed yet. It stays set after a
 * successful reconnect.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_connector_last_error(char **out, hakuban_connector connector);

/**
 * Registers callback to be called when the connector's status may have
 * changed (a link came up or went down, a failure, the end), instead of or
 * besides polling hakuban_connector_status_fd: read the status with
 * hakuban_connector_status from it. It is also called once soon after the
 * registration. Calls coalesce: one call may stand for several changes,
 * and a call may find nothing new. The callback contract of
 * hakuban_notify_fn applies (a library thread, never concurrently with
 * itself, none after hakuban_connector_drop returns or after a replacement
 * registration is in place, drop(user_data) exactly once). NULL callback
 * removes the registration.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE (then user_data stays
 * yours: drop is not called).
 */
int32_t hakuban_connector_set_callback(hakuban_connector connector, hakuban_notify_fn callback,
                                       void *user_data, hakuban_drop_fn drop);

/**
 * Stops the connector and releases the handle: blocked
 * hakuban_connector_wait calls return HAKUBAN_END, its status fd is closed
 * (after being made readable), the link is closed with
 * a WebSocket close (so the upstream forgets this exchange's contracts at
 * once, instead of after a ping timeout), and the call returns once the
 * connector has stopped (a graceful close takes at most about 2 s). The
 * exchange and its contracts stay; it may connect again.
 *
 * Returns HAKUBAN_OK (also for connector == 0); HAKUBAN_ERR_INVALID_HANDLE
 * if it is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_connector_drop(hakuban_connector connector);

/**
 * Options of hakuban_listener_new. Always start with
 * hakuban_listener_options_init, then change what you need: fields may be
 * added in later versions (with a new HAKUBAN_ABI_VERSION). Strings are only read during hakuban_listener_new.
 * A duration of 0 means its default.
 */
typedef struct hakuban_listener_options {
    /** TCP address to bind, host:port; port 0 picks a free port (read it
     *  back with hakuban_listener_url). Default (and NULL):
     *  "127.0.0.1:3001". Use "0.0.0.0:3001" or ":3001" to accept links from
     *  other machines. */
    const char *address;
    /** HTTP path of the WebSocket endpoint; starts with "/". Default (and
     *  NULL): "/". */
    const char *path;
    /** PEM file of the server certificate (chain): set it and tls_key_file
     *  to serve wss:// instead of ws://. NULL: no TLS. */
    const char *tls_cert_file;
    /** PEM file of the private key of tls_cert_file. */
    const char *tls_key_file;
    /** PEM file of certificate authorities: when set (with TLS), every
     *  downstream must present a client certificate they signed (mutual
     *  TLS). NULL: no client certificates. */
    const char *tls_client_ca_file;
    /** Each link pings its downstream this often, in ms, >= 0; default
     *  4000. */
    int64_t ping_interval_ms;
    /** A link whose pong takes longer than this (ms, >= 0) is declared dead
     *  and closed; default 5000. */
    int64_t ping_timeout_ms;
} hakuban_listener_options;

/**
 * Fills *out with the default options: address "127.0.0.1:3001" and path
 * "/" (both pointing to static strings of the library), no TLS, default
 * durations. NULL is ignored. Thread-safe; cannot fail.
 */
void hakuban_listener_options_init(hakuban_listener_options *out);

/**
 * hakuban_listener_new with rules from the start: who may connect and what
 * each client may observe and expose. auth_json is JSON text in the format
 * of the router's auth file (docs/router.md: "clients", each with a "token"
 * or "token_sha256" and what it may "observe" and "expose"; an optional
 * "anonymous" entry for clients without a token). A client's token is
 * hakuban_connector_options.token. NULL: no rules, every client may do
 * everything (as hakuban_listener_new). Change the rules later with
 * hakuban_listener_set_auth. Only read during the call.
 *
 * Returns what hakuban_listener_new returns; also
 * HAKUBAN_ERR_INVALID_CONFIG if auth_json is not valid (the message says
 * where; nothing is bound then).
 */
int32_t hakuban_listener_new_with_auth(hakuban_listener *out, hakuban_exchange exchange,
                                       const hakuban_listener_options *options,
                                       const char *auth_json);

/**
 * Replaces the rules of listener (auth_json as in
 * hakuban_listener_new_with_auth; NULL: no rules) and applies them at once to new and open links, as a
 * router reloading its auth file does: a client whose token the rules no
 * longer accept is disconnected (its connector reports REFUSED, close 4002,
 * and does not retry); a contract a client may no longer make is refused
 * (its next receive fails once with HAKUBAN_ERR_REFUSED, an assignment it
 * held ends); rights added apply to what clients declare afterwards.
 * Thread-safe.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_HANDLE (listener);
 * HAKUBAN_ERR_INVALID_CONFIG if auth_json is not valid (the message says
 * where); the previous rules then stay.
 */
int32_t hakuban_listener_set_auth(hakuban_listener listener, const char *auth_json);

/**
 * Makes exchange accept downstream links: binds options->address at once
 * (so a busy port is reported here, not later) and serves WebSocket links
 * on it, on library threads, until dropped. Downstream exchanges (or
 * routers) connect to hakuban_listener_url with hakuban_connector_new. An
 * exchange may have any number of listeners. options may be NULL for the
 * defaults; it is only read during the call. The caller owns *out and must
 * drop it (the port stays bound until then, even after the exchange was
 * dropped).
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE (exchange); HAKUBAN_ERR_INVALID_CONFIG if an
 * option is out of range, or a TLS file cannot be loaded, or a TLS key or
 * client CA is given without a certificate (the message says which);
 * HAKUBAN_ERR_CONNECTION if the address cannot be bound, with the system's
 * reason in the message (e.g. "address already in use");
 * HAKUBAN_ERR_CLOSED if the exchange is closing.
 */
int32_t hakuban_listener_new(hakuban_listener *out, hakuban_exchange exchange,
                             const hakuban_listener_options *options);

/**
 * Stores in *out the URL downstreams connect to, ws://host:port/path (or
 * wss://), with the port actually bound (useful after binding port 0): a
 * NUL-terminated copy owned by the caller, free it with hakuban_string_free.
 * When the listener bound a wildcard address (0.0.0.0, ::) the URL names it
 * as is: replace the host with one the downstreams can reach.
 *
 * Returns HAKUBAN_OK; HAKUBAN_ERR_INVALID_ARGUMENT if out is NULL;
 * HAKUBAN_ERR_INVALID_HANDLE.
 */
int32_t hakuban_listener_url(char **out, hakuban_listener listener);

/**
 * Stops accepting, closes every downstream link normally (in parallel;
 * their exchanges reconnect elsewhere or later), unbinds the port and
 * releases the handle. Returns when all of that is done (at most about
 * 2 s).
 *
 * Returns HAKUBAN_OK (also for listener == 0); HAKUBAN_ERR_INVALID_HANDLE
 * if it is stale (already dropped), unknown or of another kind.
 */
int32_t hakuban_listener_drop(hakuban_listener listener);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HAKUBAN_H */
