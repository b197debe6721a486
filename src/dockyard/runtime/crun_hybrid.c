/* crun-hybrid: run crun in a private mount namespace where
 * /sys/fs/cgroup/unified/cgroup.controllers reads empty.
 *
 * crun 1.8 refuses to create containers on a cgroup-v1 hybrid host whose
 * unified hierarchy lists controllers. The shell fallback does the same
 * with `unshare`, `sh` and `mount`: three more processes on every start.
 * The daemon compiles this once with -DCRUN_PATH="..." (runtime/runtimes.py).
 *
 * usage: exactly crun's: crun-hybrid [crun args...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#ifndef CRUN_PATH
#define CRUN_PATH "/usr/bin/crun"
#endif
#define UNIFIED "/sys/fs/cgroup/unified"
#define CONTROLLERS UNIFIED "/cgroup.controllers"

static int fail(const char *what)
{
    fprintf(stderr, "crun-hybrid: %s: %s\n", what, strerror(errno));
    return 125;
}

int main(int argc, char **argv)
{
    (void) argc;
    if (unshare(CLONE_NEWNS) < 0)
        return fail("unshare");
    /* keep the masking mount out of the host's namespace: only the unified
     * mount is made private here; the rest keeps the host's propagation, so
     * a container's rslave/rshared binds still see (and make) host mounts */
    if (mount(NULL, UNIFIED, NULL, MS_PRIVATE, NULL) < 0)
        return fail("make " UNIFIED " private");
    if (mount("/dev/null", CONTROLLERS, NULL, MS_BIND, NULL) < 0)
        return fail("mask " CONTROLLERS);
    argv[0] = "crun";
    execv(CRUN_PATH, argv);
    return fail("exec " CRUN_PATH);
}
