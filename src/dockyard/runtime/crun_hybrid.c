/* crun-hybrid: run crun, in a private mount namespace where
 * /sys/fs/cgroup/unified/cgroup.controllers reads empty (MASK_HYBRID),
 * and/or through the loader of a private prefix (CRUN_LOADER).
 *
 * crun 1.8 refuses to create containers on a cgroup-v1 hybrid host whose
 * unified hierarchy lists controllers. The shell fallback does the same
 * with `unshare`, `sh` and `mount`: three more processes on every start.
 * A crun unpacked into a private prefix by scripts/install-crun.sh (built
 * with CRIU, for checkpoint/restore) runs through that prefix's loader with
 * --library-path; this execs the loader directly, with no shell between.
 * The daemon compiles this once with -DCRUN_PATH="..." and, as needed,
 * -DMASK_HYBRID=1, -DCRUN_LOADER="..." -DCRUN_LIBRARY_PATH="..."
 * (runtime/runtimes.py).
 *
 * usage: exactly crun's: crun-hybrid [crun args...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#ifndef CRUN_PATH
#define CRUN_PATH "/usr/bin/crun"
#endif
#ifndef MASK_HYBRID
#define MASK_HYBRID 1
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
#if MASK_HYBRID
    if (unshare(CLONE_NEWNS) < 0)
        return fail("unshare");
    /* keep the masking mount out of the host's namespace: only the unified
     * mount is made private here; the rest keeps the host's propagation, so
     * a container's rslave/rshared binds still see (and make) host mounts */
    if (mount(NULL, UNIFIED, NULL, MS_PRIVATE, NULL) < 0)
        return fail("make " UNIFIED " private");
    if (mount("/dev/null", CONTROLLERS, NULL, MS_BIND, NULL) < 0)
        return fail("mask " CONTROLLERS);
#endif
#ifdef CRUN_LOADER
    /* loader --library-path LIBS crun args...: crun's memfd re-exec of
     * /proc/self/exe (the loader) keeps this command line, so runs the same */
    char **args = calloc((size_t) argc + 4, sizeof(char *));
    if (args == NULL)
        return fail("calloc");
    args[0] = CRUN_LOADER;
    args[1] = "--library-path";
    args[2] = CRUN_LIBRARY_PATH;
    args[3] = CRUN_PATH;
    for (int i = 1; i < argc; i++)
        args[i + 3] = argv[i];
    execv(CRUN_LOADER, args);
    return fail("exec " CRUN_LOADER);
#else
    (void) argc;
    argv[0] = "crun";
    execv(CRUN_PATH, argv);
    return fail("exec " CRUN_PATH);
#endif
}
