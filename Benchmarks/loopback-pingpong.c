// The kernel's floor under a request on TCP loopback: one connection, both ends in one thread,
// a 52-byte request and a 130-byte response per round trip (HTTP plaintext's sizes), no epoll
// and no sleeping; prints the process's CPU time per round trip (both ends' calls: two sends and
// two receives). Mode 0 uses write/read, mode 1 send/recv, to price the file layer read and
// write pass through on a socket.
//   gcc -O2 -o /tmp/pingpong Benchmarks/loopback-pingpong.c
//   for i in 1 2 3; do taskset -c 0 /tmp/pingpong 0 200000; taskset -c 0 /tmp/pingpong 1 200000; done
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s 0|1 ROUNDTRIPS\n", argv[0]);
        return 2;
    }
    int mode = atoi(argv[1]);
    long n = atol(argv[2]);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listener, (void *)&address, sizeof address) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (void *)&address, &length) != 0) {
        perror("listen");
        return 1;
    }
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, (void *)&address, sizeof address) != 0) {
        perror("connect");
        return 1;
    }
    int server = accept(listener, 0, 0);
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char request[52], response[130], buffer[65536];
    memset(request, 'q', sizeof request);
    memset(response, 'r', sizeof response);
    double start = cpu_ns();
    for (long i = 0; i < n; i++) {
        if (mode == 0) {
            if (write(client, request, sizeof request) < 0 || read(server, buffer, sizeof buffer) <= 0 ||
                write(server, response, sizeof response) < 0 || read(client, buffer, sizeof buffer) <= 0)
                return 1;
        } else {
            if (send(client, request, sizeof request, 0) < 0 || recv(server, buffer, sizeof buffer, 0) <= 0 ||
                send(server, response, sizeof response, 0) < 0 || recv(client, buffer, sizeof buffer, 0) <= 0)
                return 1;
        }
    }
    printf("%s %.0f ns/roundtrip\n", mode ? "send/recv" : "write/read", (cpu_ns() - start) / n);
    return 0;
}
