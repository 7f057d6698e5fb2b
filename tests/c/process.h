/*
 * process.h — child processes for the network tests (the router, the
 * example programs, openssl): start, wait with a deadline, stop. Include
 * after testutil.h.
 *
 * Children are started with fork + exec. The library must not be used in a
 * child forked after it was loaded (the header's process caveats), and it
 * is not: between fork and exec the child only calls async-signal-safe
 * functions. Each child gets PR_SET_PDEATHSIG, and every child still
 * running is stopped at exit (FAIL exits too), so a failing or crashing
 * test never leaves a router behind.
 */
#ifndef HAKUBAN_TEST_PROCESS_H
#define HAKUBAN_TEST_PROCESS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 16

static pid_t children[MAX_CHILDREN];

/* Stops pid: SIGTERM, up to 5 s to exit, then SIGKILL. Returns its wait
 * status, or -1 if it was not running. */
static inline int stop_child(pid_t pid) {
    if (pid <= 0) return -1;
    int status = 0;
    kill(pid, SIGTERM);
    int64_t deadline = now_ms() + 5000;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) return -1;
        if (now_ms() >= deadline) {
            fprintf(stderr, "child %d ignored SIGTERM for 5 s: SIGKILL\n", (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        sleep_ms(5);
    }
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid) children[i] = 0;
    return status;
}

static inline void stop_all_children(void) {
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) stop_child(children[i]);
}

/*
 * Starts argv[0] with arguments argv (NULL-terminated). Its stdout goes to
 * the file stdout_path (created or truncated) unless that is NULL; stderr is
 * inherited, so its messages show in the test's output.
 */
static inline pid_t start_child(const char *const argv[], const char *stdout_path) {
    static bool registered;
    if (!registered) {
        atexit(stop_all_children);
        registered = true;
    }
    int out = -1;
    if (stdout_path != NULL) {
        out = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0) FAIL("open %s: %s", stdout_path, strerror(errno));
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127); /* the parent died already */
        if (out >= 0 && dup2(out, STDOUT_FILENO) < 0) _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (out >= 0) close(out);
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] == 0) {
            children[i] = pid;
            return pid;
        }
    }
    kill(pid, SIGKILL);
    FAIL("more than %d children", MAX_CHILDREN);
}

/* Waits up to timeout_ms for pid to exit: true and its wait status in
 * *status, or false if it is still running. */
static inline bool wait_child(pid_t pid, int timeout_ms, int *status) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            for (int i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid) children[i] = 0;
            return true;
        }
        if (r < 0) FAIL("waitpid %d: %s", (int)pid, strerror(errno));
        if (now_ms() >= deadline) return false;
        sleep_ms(5);
    }
}

/* Runs argv to completion (at most timeout_ms); true if it exited with 0. */
static inline bool run_child(const char *const argv[], int timeout_ms) {
    pid_t pid = start_child(argv, NULL);
    int status = 0;
    if (!wait_child(pid, timeout_ms, &status)) {
        stop_child(pid);
        return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Whether path names an executable file. */
static inline bool executable(const char *path) {
    return path != NULL && path[0] != 0 && access(path, X_OK) == 0;
}

/* Reads a whole (small) file into buf, NUL-terminated; false if it cannot be
 * read. */
static inline bool read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return true;
}

/* A fresh temporary directory (removed by remove_temp_dir). */
static inline void make_temp_dir(char *buf, size_t cap, const char *name) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, cap, "%s/%s-XXXXXX", base && base[0] ? base : "/tmp", name);
    if (mkdtemp(buf) == NULL) FAIL("mkdtemp %s: %s", buf, strerror(errno));
}

static inline void remove_temp_dir(const char *dir) {
    const char *argv[] = {"/bin/rm", "-rf", dir, NULL};
    if (!run_child(argv, 10000)) fprintf(stderr, "could not remove %s\n", dir);
}

#endif
