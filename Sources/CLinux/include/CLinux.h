// Header-only shim: exposes the Linux system interfaces that `import Glibc` leaves out
// (epoll, eventfd, sendfile, openat2, mallopt, sync_file_range). It must stay declarations only: no
// C logic here, and no feature macros that would make these headers disagree with the Glibc module's.
#ifndef REACTORD_CLINUX_H
#define REACTORD_CLINUX_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <malloc.h>

// accept4(2) is declared by <sys/socket.h> only under _GNU_SOURCE, which would make these
// headers disagree with the Glibc module's; this is the same declaration, without the macro.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

// sync_file_range(2) is declared by <fcntl.h> only under _GNU_SOURCE too, and so are its flags:
// the store spells out the one it uses (Sources/Store/StoreIO.swift).
extern int sync_file_range(int fd, long long offset, long long nbytes, unsigned int flags);

// openat2(2) has no glibc wrapper and Swift cannot call the variadic syscall(2). This declares
// the same `syscall` symbol with a fixed, integer-only prototype (the x86_64 and aarch64
// syscall entry points only move registers), so Swift can call it.
extern long reactord_syscall4(long number, long a1, const void *a2, const void *a3, unsigned long a4)
    __asm__("syscall");

#endif
