/*
 * fork-per-client.c - one child process per client. The child closes the listening socket and
 * serves; the parent closes its copy of the connection at once (else the client would never see
 * EOF and the parent would run out of descriptors), and reaps children as they exit.
 * SIGTERM: the parent stops accepting, signals every child and waits for all of them.
 */
#include "common.h"

static int listen_fd, client_fd;

static void serve(void *unused) {
    (void)unused;
    close(listen_fd);
    serve_client(client_fd);
    close(client_fd);
}

int main(int argc, char **argv) {
    struct options o;
    parse_options(argc, argv, &o);
    listen_fd = listen_on(&o, 1);   /* non-blocking: the parent sleeps in ppoll, not accept */
    parent_signals();
    announce_ready();
    while (!stop_requested) {
        if (!wait_for(listen_fd, POLLIN)) { reap_children(); continue; }
        client_fd = accept_client(listen_fd);
        if (client_fd < 0) continue;
        if (spawn_child(serve, NULL) < 0) perror("fork");   /* the client gets EOF */
        close(client_fd);
    }
    close(listen_fd);
    stop_children();
    return 0;
}
