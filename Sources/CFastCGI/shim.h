#include <fcgiapp.h>
#include <sys/prctl.h>
#include <signal.h>

/* prctl is variadic: a typed wrapper so a worker dies with its master. */
static inline int pinglass_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, (unsigned long)sig); }
