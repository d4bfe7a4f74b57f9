/*
 * iterative.c - the iterative server: accept one client, serve it until it leaves, then accept
 * the next. Nothing runs concurrently, so nothing needs stopping: SIGTERM's default action ends
 * the one process and the kernel closes its descriptors.
 */
#include "common.h"

int main(int argc, char **argv) {
    struct options o;
    parse_options(argc, argv, &o);
    int lfd = listen_on(&o, 0);
    announce_ready();
    for (;;) {
        int cfd = accept_client(lfd);
        if (cfd < 0) continue;
        serve_client(cfd);      /* every other client waits in the listen backlog meanwhile */
        close(cfd);
    }
}
