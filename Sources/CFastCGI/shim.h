#include <fcgiapp.h>
#include <sys/prctl.h>
#include <signal.h>
#include <poll.h>
#include <time.h>

/* prctl is variadic: a typed wrapper so a worker dies with its master. */
static inline int pinglass_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, (unsigned long)sig); }

/* ppoll is a GNU extension that Swift's Glibc module leaves out (it is not built with
   _GNU_SOURCE), so it is declared here with glibc's own prototype. The pool waits with it:
   signals stay blocked except inside the wait, where ppoll unblocks them atomically, so a
   signal is never lost between checking the flags and going to sleep. */
extern int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask);

#include <sys/epoll.h>
#include <unistd.h>

/* A worker's wait for a connection: an epoll set holding only the shared listening socket,
   added with EPOLLEXCLUSIVE so that the kernel wakes one idle worker per connection rather
   than all of them. Returns the epoll fd, or -1. */
static inline int pinglass_listen_epoll(int listen_fd) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -1;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data = { .fd = listen_fd } };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) { close(ep); return -1; }
    return ep;
}

/* Waits on that set with every signal deliverable, and only during the wait (epoll_pwait
   swaps the mask atomically, like ppoll): 1 = a connection may be waiting, -1 = interrupted. */
static inline int pinglass_epoll_wait_with_signals(int ep) {
    sigset_t none;
    sigemptyset(&none);
    struct epoll_event ev;
    return epoll_pwait(ep, &ev, 1, -1, &none);
}
