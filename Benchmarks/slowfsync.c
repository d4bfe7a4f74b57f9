/* An LD_PRELOAD library that makes every fsync(2) and fdatasync(2) wait SLOW_FSYNC_US
 * microseconds (default 2000) before doing the real sync. This machine's virtual disk syncs in
 * tens of microseconds; a real SSD takes a millisecond or more, and that is what group commit is
 * for. Benchmarks/pauses.sh preloads it into reactord and redis-server alike, so both pay the
 * same price per sync.
 *
 *   cc -O2 -shared -fPIC -o slowfsync.so Benchmarks/slowfsync.c -ldl
 *   SLOW_FSYNC_US=2000 LD_PRELOAD=$PWD/slowfsync.so .build/release/reactord --fsync always
 *
 * Two syncs in flight at once each wait their own delay (a device may overlap them or not). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

typedef int (*sync_function)(int);

static void wait_like_a_disk(void) {
    const char *setting = getenv("SLOW_FSYNC_US");
    long microseconds = setting ? strtol(setting, NULL, 10) : 2000;
    struct timespec left = { microseconds / 1000000, (microseconds % 1000000) * 1000 };
    while (nanosleep(&left, &left) != 0) {
    }
}

static int slowed(const char *name, int fd) {
    sync_function real = (sync_function)dlsym(RTLD_NEXT, name);
    wait_like_a_disk();
    return real(fd);
}

int fsync(int fd) { return slowed("fsync", fd); }

int fdatasync(int fd) { return slowed("fdatasync", fd); }
