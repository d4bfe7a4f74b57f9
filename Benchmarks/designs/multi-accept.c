/*
 * multi-accept.c - -w pre-forked workers all blocking in accept() on the one listening socket
 * they inherited; the kernel wakes one worker per connection. Each worker serves one client at
 * a time, so at most -w clients are served at once. The parent keeps no socket: it only waits
 * for signals, reaps, and on SIGTERM signals every worker and waits for all of them.
 */
#include "common.h"

static int listen_fd;

static void worker(void *unused) {
    (void)unused;
    for (;;) {
        int cfd = accept_client(listen_fd);
        if (cfd < 0) continue;
        serve_client(cfd);
        close(cfd);
    }
}

int main(int argc, char **argv) {
    struct options o;
    parse_options(argc, argv, &o);
    listen_fd = listen_on(&o, 0);
    parent_signals();
    for (int i = 0; i < o.workers; i++) {
        if (spawn_child(worker, NULL) < 0) { perror("fork"); stop_children(); return 1; }
    }
    close(listen_fd);
    announce_ready();
    while (!stop_requested) {
        wait_for(-1, 0);        /* sleeps until a signal: SIGCHLD or SIGTERM */
        reap_children();
    }
    stop_children();
    return 0;
}
