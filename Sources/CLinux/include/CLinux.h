// Header-only shim: exposes the Linux system interfaces that `import Glibc` leaves out
// (epoll, eventfd, accept4, sendfile, openat2). It must stay declarations only: no C logic here.
#ifndef REACTORD_CLINUX_H
#define REACTORD_CLINUX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#endif
