// CPU per send of a small frame into many loopback TCP sockets: one send(2) per socket (what
// Connection.flush does for a fan-out) against all of a round's sends submitted to io_uring
// (IORING_OP_SEND) with one io_uring_enter per 4,096. The question it answers: would batching a
// loop iteration's flushes into io_uring make a delivery cheaper (Benchmarks/README.md, "Pub/sub
// fan-out: the kernel's share")?
//
// Build and run (the sender pinned to CPU 0; with READER=1 a thread on CPU 1 reads every socket
// from epoll, as subscribers do, so the wake-ups the sends cause are counted too):
//   cc -O2 -pthread -o /tmp/loopback-send scripts/loopback-send.c
//   READER=1 taskset -c 0 /tmp/loopback-send send 5000 40
//   READER=1 taskset -c 0 /tmp/loopback-send uring 5000 40
// Arguments: mode (send | uring | uring-fixed: registered files | both: send and uring rounds
// alternating over the same sockets, a paired comparison on a shared machine), sockets, rounds;
// SIZE=bytes per send (64). Prints the sending thread's CPU time per send (user + system, which on loopback
// includes the receiving side's TCP processing, run in the sender's context).
// No liburing: the ring is set up and driven with raw system calls.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int count = 5000, rounds = 40, size = 64;
static int *senders, *receivers;
static char payload[65536];
static volatile int stopReader;

static double threadCPU(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

// Reads every receiving socket as it becomes readable (the subscribers' side).
static void *reader(void *unused) {
    (void)unused;
    pin(1);
    int ep = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.fd = receivers[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, receivers[i], &e);
    }
    struct epoll_event events[512];
    char buffer[65536];
    while (!stopReader) {
        int n = epoll_wait(ep, events, 512, 10);
        for (int k = 0; k < n; k++)
            while (read(events[k].data.fd, buffer, sizeof buffer) > 0) {}
    }
    close(ep);
    return NULL;
}

static void drainAll(void) {
    char buffer[65536];
    for (int i = 0; i < count; i++)
        while (read(receivers[i], buffer, sizeof buffer) > 0) {}
}

// The ring: submission and completion queues mapped as the kernel lays them out.
static int ringFD;
static unsigned ringEntries, *sqTail, *sqMask, *cqHead, *cqTail, *cqMask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static int setUpRing(unsigned entries) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    // One thread submits and reaps; completions are run at submission, not by interrupt.
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    ringFD = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (ringFD < 0) return -1;
    ringEntries = p.sq_entries;
    size_t sqSize = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cqSize = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single) sqSize = cqSize = sqSize > cqSize ? sqSize : cqSize;
    char *sq = mmap(NULL, sqSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFD, IORING_OFF_SQ_RING);
    char *cq = single ? sq : mmap(NULL, cqSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFD, IORING_OFF_CQ_RING);
    sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                ringFD, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) return -1;
    sqTail = (unsigned *)(sq + p.sq_off.tail);
    sqMask = (unsigned *)(sq + p.sq_off.ring_mask);
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i;
    cqHead = (unsigned *)(cq + p.cq_off.head);
    cqTail = (unsigned *)(cq + p.cq_off.tail);
    cqMask = (unsigned *)(cq + p.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

// One send per socket through the ring, a batch of up to ringEntries per io_uring_enter.
// Returns how many sends were short or failed.
static long ringRound(int fixedFiles) {
    long failed = 0;
    for (int i = 0; i < count;) {
        unsigned batch = (unsigned)(count - i) < ringEntries ? (unsigned)(count - i) : ringEntries;
        unsigned tail = *sqTail;
        for (unsigned k = 0; k < batch; k++, i++) {
            struct io_uring_sqe *sqe = &sqes[(tail + k) & *sqMask];
            memset(sqe, 0, sizeof *sqe);
            sqe->opcode = IORING_OP_SEND;
            sqe->fd = fixedFiles ? i : senders[i];
            sqe->flags = fixedFiles ? IOSQE_FIXED_FILE : 0;
            sqe->addr = (unsigned long)payload;
            sqe->len = (unsigned)size;
            sqe->msg_flags = MSG_DONTWAIT;  // a full socket completes with -EAGAIN, never waits
            sqe->user_data = (unsigned long)i;
        }
        __atomic_store_n(sqTail, tail + batch, __ATOMIC_RELEASE);
        if (syscall(__NR_io_uring_enter, ringFD, batch, batch, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
            perror("io_uring_enter");
            exit(1);
        }
        unsigned head = *cqHead, end = __atomic_load_n(cqTail, __ATOMIC_ACQUIRE);
        for (; head != end; head++)
            if (cqes[head & *cqMask].res != size) failed++;
        __atomic_store_n(cqHead, head, __ATOMIC_RELEASE);
    }
    return failed;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "send";
    if (argc > 2) count = atoi(argv[2]);
    if (argc > 3) rounds = atoi(argv[3]);
    if (getenv("SIZE")) size = atoi(getenv("SIZE"));
    int withReader = getenv("READER") != NULL;
    if (size < 1 || size > (int)sizeof payload || count < 1 || rounds < 1) {
        fprintf(stderr, "usage: [READER=1] [SIZE=64] loopback-send send|uring|uring-fixed|both SOCKETS ROUNDS\n");
        return 2;
    }
    memset(payload, 'x', sizeof payload);
    senders = calloc((size_t)count, sizeof(int));
    receivers = calloc((size_t)count, sizeof(int));
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 4096)
        || getsockname(listener, (struct sockaddr *)&address, &length)) {
        perror("listen");
        return 1;
    }
    for (int i = 0; i < count; i++) {
        senders[i] = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(senders[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (senders[i] < 0 || connect(senders[i], (struct sockaddr *)&address, sizeof address)) {
            perror("connect (raise ulimit -n to twice the sockets)");
            return 1;
        }
        receivers[i] = accept(listener, NULL, NULL);
        if (receivers[i] < 0) {
            perror("accept");
            return 1;
        }
        fcntl(senders[i], F_SETFL, O_NONBLOCK);
        fcntl(receivers[i], F_SETFL, O_NONBLOCK);
    }
    int both = strcmp(mode, "both") == 0;
    int ring = both || strncmp(mode, "uring", 5) == 0, fixedFiles = strcmp(mode, "uring-fixed") == 0;
    if (ring && setUpRing(4096)) {
        perror("io_uring_setup");
        return 1;
    }
    if (fixedFiles && syscall(__NR_io_uring_register, ringFD, IORING_REGISTER_FILES, senders, count)) {
        perror("IORING_REGISTER_FILES");
        return 1;
    }
    if (!ring && strcmp(mode, "send")) {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    pthread_t thread;
    if (withReader) {
        pthread_create(&thread, NULL, reader, NULL);
        usleep(100000);
    }
    double cpu = 0, sendCPU = 0;
    long failed = 0;
    for (int r = 0; r < rounds; r++) {
        double start = threadCPU();
        if (ring && (!both || r % 2 == 1)) {
            failed += ringRound(fixedFiles);
        } else {
            for (int i = 0; i < count; i++)
                if (send(senders[i], payload, (size_t)size, MSG_DONTWAIT) != size) failed++;
        }
        if (both && r % 2 == 0) sendCPU += threadCPU() - start;
        else cpu += threadCPU() - start;
        // Between rounds: the reader catches up, or the receive queues are emptied untimed.
        if (withReader) usleep(2000);
        else if (r % 10 == 9) drainAll();
    }
    if (withReader) {
        stopReader = 1;
        pthread_join(thread, NULL);
    }
    if (both) {
        int half = rounds / 2;
        printf("both sockets=%d rounds=%d+%d size=%d reader=%d: send %.3f us, uring %.3f us CPU per send (%.1f%% less), "
               "%ld short or failed\n", count, rounds - half, half, size, withReader, sendCPU / count / (rounds - half) * 1e6,
               cpu / count / half * 1e6, 100 * (1 - (cpu / half) / (sendCPU / (rounds - half))), failed);
        return failed != 0;
    }
    printf("%s sockets=%d rounds=%d size=%d reader=%d: %.3f us CPU per send, %ld short or failed\n", mode, count,
           rounds, size, withReader, cpu / count / rounds * 1e6, failed);
    return failed != 0;
}
