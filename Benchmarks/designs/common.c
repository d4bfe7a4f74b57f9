/*
 * common.c - the parts every design shares (see common.h). The echo protocol here is
 * reactord's EchoService: complete lines are echoed in one write per read, `:exit` (with or
 * without a CR) closes without a reply, and input is bounded by the longest line.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <time.h>

#define MAX_LINE 65536

static int bound_port;

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s [-l ADDR] [-p PORT] [-w WORKERS]\n", argv0);
    exit(2);
}

void parse_options(int argc, char **argv, struct options *o) {
    o->host = "127.0.0.1";
    o->port = 0;
    o->workers = 4;
    int c;
    while ((c = getopt(argc, argv, "l:p:w:")) != -1) {
        switch (c) {
        case 'l': o->host = optarg; break;
        case 'p': o->port = atoi(optarg); break;
        case 'w': o->workers = atoi(optarg); break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || o->port < 0 || o->port > 65535 || o->workers < 1) usage(argv[0]);
    /* A peer that resets while we write must cost an EPIPE, not the whole server. */
    signal(SIGPIPE, SIG_IGN);
}

int listen_on(const struct options *o, int nonblocking) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)o->port);
    if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) {
        fprintf(stderr, "not a numeric IPv4 address: %s\n", o->host);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
        || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
        fprintf(stderr, "listen on %s:%d: %s\n", o->host, o->port, strerror(errno));
        exit(1);
    }
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    bound_port = ntohs(sa.sin_port);
    return fd;
}

void announce_ready(void) {
    printf("%d\n", bound_port);
    fflush(stdout);     /* stdout is often a pipe, fully buffered */
}

int accept_client(int listen_fd) {
    for (;;) {
        /* Linux: the new socket does not inherit O_NONBLOCK, so clients are served blocking. */
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) return fd;
        if (errno == EINTR) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timespec pause = { 0, 10 * 1000 * 1000 };
            nanosleep(&pause, NULL);
        }
        return -1;
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Whether a line (terminator, if any, included) is `:exit`. */
static int is_exit(const char *p, size_t n) {
    if (n > 0 && p[n - 1] == '\n') n--;
    if (n > 0 && p[n - 1] == '\r') n--;
    return n == 5 && memcmp(p, ":exit", 5) == 0;
}

void serve_client(int fd) {
    /* Room for the longest line, its CR LF, and nothing more: input is bounded. */
    char buf[MAX_LINE + 2];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return;
        if (r == 0) {
            if (have > 0 && !is_exit(buf, have)) write_all(fd, buf, have);
            return;
        }
        have += (size_t)r;
        /* Echo every complete line in one write; stop at `:exit` or an over-long line. */
        size_t done = 0;
        int close_after = 0;
        for (;;) {
            char *nl = memchr(buf + done, '\n', have - done);
            if (nl == NULL) break;
            size_t len = (size_t)(nl - (buf + done)) + 1;
            size_t content = len - 1 - (len >= 2 && buf[done + len - 2] == '\r');
            if (is_exit(buf + done, len)) { close_after = 1; break; }
            if (content > MAX_LINE) { close_after = 2; break; }
            done += len;
        }
        if (done > 0 && write_all(fd, buf, done) < 0) return;
        if (close_after == 2) write_all(fd, "ERR line too long\n", 18);
        if (close_after) return;
        memmove(buf, buf + done, have - done);
        have -= done;
        if (have == sizeof buf) {   /* no terminator within MAX_LINE + 2 bytes */
            write_all(fd, "ERR line too long\n", 18);
            return;
        }
    }
}

/* --- servers with child processes --- */

volatile sig_atomic_t stop_requested;
static sigset_t wait_mask;      /* the mask inside ppoll: the parent's signals unblocked */
static pid_t *children;         /* PIDs forked and not yet reaped */
static size_t n_children, cap_children;

static void on_stop(int sig) { (void)sig; stop_requested = 1; }
static void on_child(int sig) { (void)sig; /* only interrupts ppoll; reap_children() reaps */ }

void parent_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;                /* no SA_RESTART: ppoll returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_child;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGCHLD);
}

int wait_for(int fd, short events) {
    struct pollfd p = { .fd = fd, .events = events };
    if (stop_requested) return 0;
    int n = ppoll(&p, fd >= 0 ? 1 : 0, NULL, &wait_mask);
    return n > 0;
}

void child_signals(void) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

pid_t spawn_child(void (*body)(void *), void *arg) {
    if (n_children == cap_children) {
        size_t cap = cap_children ? cap_children * 2 : 64;
        pid_t *p = realloc(children, cap * sizeof *p);
        if (p == NULL) return -1;
        children = p;
        cap_children = cap;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        child_signals();
        /* Should the parent die without its SIGTERM handler running (SIGKILL), the kernel sends
         * the child SIGTERM, so no worker outlives its server; the check closes the race with a
         * parent that died before the prctl. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(0);
        body(arg);
        _exit(0);
    }
    if (pid > 0) children[n_children++] = pid;
    return pid;
}

static void forget(pid_t pid) {
    for (size_t i = 0; i < n_children; i++) {
        if (children[i] == pid) { children[i] = children[--n_children]; return; }
    }
}

void reap_children(void) {
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) forget(pid);
}

void stop_children(void) {
    /* A child that has exited but is not yet reaped keeps its PID, so no signal goes astray. */
    for (size_t i = 0; i < n_children; i++) kill(children[i], SIGTERM);
    while (n_children > 0) {
        pid_t pid = waitpid(-1, NULL, 0);
        if (pid > 0) forget(pid);
        else if (errno != EINTR) break;     /* ECHILD: nothing left to wait for */
    }
}
