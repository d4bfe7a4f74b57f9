/*
 * prefork-fdpass.c - a pool of -w pre-forked workers; only the parent accepts, and it hands
 * each connection to whichever worker is free over one shared Unix SOCK_SEQPACKET socket
 * (sendmsg with SCM_RIGHTS; each message goes to exactly one reader). The parent closes its
 * copy once the descriptor is in flight. A worker serves one client at a time, so at most -w
 * clients are served at once; when all are busy the parent's send waits and new clients wait
 * in the listen backlog. SIGTERM: the parent signals every worker and waits for all of them.
 */
#include "common.h"

#include <sys/uio.h>

static int listen_fd, pass[2];  /* pass[0]: the parent's end; pass[1]: the workers' */

static int send_fd(int sock, int fd) {
    char byte = 0;
    struct iovec iov = { &byte, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    for (;;) {
        if (!wait_for(sock, POLLOUT)) {
            reap_children();
            if (stop_requested) return -1;
            continue;
        }
        if (sendmsg(sock, &m, MSG_DONTWAIT) == 1) return 0;
        if (errno != EINTR && errno != EAGAIN) return -1;
    }
}

/* Returns a received descriptor, or -1 when the parent has gone (EOF) or on error. */
static int recv_fd(int sock) {
    char byte;
    struct iovec iov = { &byte, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    for (;;) {
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = sizeof u.buf };
        ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        return fd;
    }
}

static void worker(void *unused) {
    (void)unused;
    close(listen_fd);
    close(pass[0]);
    int fd;
    while ((fd = recv_fd(pass[1])) >= 0) {
        serve_client(fd);
        close(fd);
    }
}

int main(int argc, char **argv) {
    struct options o;
    parse_options(argc, argv, &o);
    listen_fd = listen_on(&o, 1);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pass) < 0) { perror("socketpair"); return 1; }
    parent_signals();
    for (int i = 0; i < o.workers; i++) {
        if (spawn_child(worker, NULL) < 0) { perror("fork"); stop_children(); return 1; }
    }
    close(pass[1]);
    announce_ready();
    while (!stop_requested) {
        if (!wait_for(listen_fd, POLLIN)) { reap_children(); continue; }
        int cfd = accept_client(listen_fd);
        if (cfd < 0) continue;
        if (send_fd(pass[0], cfd) < 0 && !stop_requested) perror("sendmsg");
        close(cfd);             /* the worker holds its own copy now */
    }
    close(listen_fd);
    close(pass[0]);
    stop_children();
    return 0;
}
