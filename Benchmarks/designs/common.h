/*
 * common.h - what every design shares: flags, the listening socket, reactord's echo protocol,
 * and the signal plumbing of servers that own child processes. The designs differ only in who
 * calls accept() and who runs serve_client(); that difference is all each design's file shows.
 */
#ifndef DESIGNS_COMMON_H
#define DESIGNS_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct options {
    const char *host;   /* -l ADDR: numeric IPv4 address to listen on (127.0.0.1) */
    int port;           /* -p PORT: 0 = any free port */
    int workers;        /* -w N: size of a worker pool (designs that have one) */
};

/* Parses -l, -p, -w; prints usage and exits 2 on anything else. */
void parse_options(int argc, char **argv, struct options *o);

/* A bound, listening TCP socket (backlog 4096, as reactord's). Exits 1 on failure. */
int listen_on(const struct options *o, int nonblocking);

/* Prints the bound port on one line to stdout, once the design is ready to serve (its workers
 * started), so a caller that asked for port 0 learns it and may start at once. */
void announce_ready(void);

/* accept(2) with EINTR retried. Returns the connection, or -1 when there is none to take now
 * (EAGAIN on a non-blocking listener, a connection reset before it was taken, or a resource
 * limit such as EMFILE, after which it pauses 10 ms rather than spin). */
int accept_client(int listen_fd);

/* Serves one client with reactord's echo protocol until it sends `:exit`, closes, or fails:
 * each line goes back exactly as sent, terminator included; a last line without a terminator
 * is echoed as it is at EOF; a line over 65,536 bytes gets `ERR line too long` and ends the
 * session. Blocking I/O. Does not close fd. */
void serve_client(int fd);

/* --- servers with child processes (fork, prefork, multi-accept) --- */

/* Set by SIGTERM or SIGINT. */
extern volatile sig_atomic_t stop_requested;

/* Installs the parent's handlers and blocks SIGTERM, SIGINT and SIGCHLD: they are delivered
 * only inside wait_for() (ppoll with the old mask), so no signal is lost between checking
 * stop_requested and going to sleep. */
void parent_signals(void);

/* Waits until fd has `events` (fd < 0: waits for a signal only). Returns 1 when ready,
 * 0 when a signal came first: the caller reaps, then checks stop_requested. */
int wait_for(int fd, short events);

/* A child's first call after fork(): default signal dispositions, nothing blocked. */
void child_signals(void);

/* Forks a child that runs body(arg) and exits; records its PID. Returns the PID or -1.
 * The child is sent SIGTERM if the parent dies first, even by SIGKILL. */
pid_t spawn_child(void (*body)(void *), void *arg);

/* Reaps every child that has exited (no zombies are left). */
void reap_children(void);

/* Sends SIGTERM to every child still recorded and waits for all of them. */
void stop_children(void);

#endif
