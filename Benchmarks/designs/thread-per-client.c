/*
 * thread-per-client.c - one detached thread per client, each with the default (8 MiB, mostly
 * untouched) stack. All threads share one descriptor table, so the accepting thread hands the
 * connection over and never closes it. SIGTERM's default action ends the process and every
 * thread in it.
 */
#include "common.h"

#include <pthread.h>
#include <stdint.h>

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    serve_client(fd);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    struct options o;
    parse_options(argc, argv, &o);
    int lfd = listen_on(&o, 0);
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    announce_ready();
    for (;;) {
        int cfd = accept_client(lfd);
        if (cfd < 0) continue;
        pthread_t t;
        int err = pthread_create(&t, &detached, serve, (void *)(intptr_t)cfd);
        if (err != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            close(cfd);
        }
    }
}
