/* dockyard-enter: exec a program (conmon) in a small copy of the daemon's
 * runtime mount namespace, with the mounts one container needs moved in.
 *
 * Every running container adds mounts to the daemon's namespace (its
 * overlay rootfs, its netns pin, ...). A runtime started there pays for all
 * of them on every create and exec: the kernel copies the whole table into
 * each new mount namespace (crun's own, the hybrid wrapper's), pivot_root
 * walks it, crun 1.28 reads all of /proc/mounts. The daemon keeps a mount
 * namespace without those (runtime/mntns.py) and names it by a path
 * (/proc/<daemon>/fd/<n>); this enters it, unshares a private copy of it
 * (a few dozen mounts), moves in the detached mounts the daemon cloned with
 * open_tree(2) (the container's rootfs, netns pin, bind sources), each onto
 * its own path, returns to the working directory it was started in and
 * execs the program. conmon, the runtime and the container start from there.
 *
 * When any of that fails it returns to the namespace it was started in and
 * execs the program there: the old way, slower but the same.
 *
 * usage: dockyard-enter NSPATH N FD1 PATH1 ... FDN PATHN PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004

static int enter(const char *ns, int n, char **carry)
{
    int target = open(ns, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        fprintf(stderr, "dockyard-enter: open %s: %s\n", ns, strerror(errno));
        return -1;
    }
    int rc = setns(target, CLONE_NEWNS);
    close(target);
    if (rc < 0) {
        fprintf(stderr, "dockyard-enter: setns: %s\n", strerror(errno));
        return -1;
    }
    if (unshare(CLONE_NEWNS) < 0) {
        fprintf(stderr, "dockyard-enter: unshare: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int fd = atoi(carry[2 * i]);
        const char *path = carry[2 * i + 1];
        if (syscall(SYS_move_mount, fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
            fprintf(stderr, "dockyard-enter: move_mount %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: dockyard-enter NSPATH N FD PATH ... PROGRAM [ARGS...]\n");
        return 125;
    }
    int n = atoi(argv[2]);
    if (n < 0 || argc < 4 + 2 * n) {
        fprintf(stderr, "dockyard-enter: bad arguments\n");
        return 125;
    }
    char **carry = argv + 3, **prog = argv + 3 + 2 * n;
    char cwd[PATH_MAX];
    int have_cwd = getcwd(cwd, sizeof cwd) != NULL;
    int self = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
        fprintf(stderr, "dockyard-enter: open /proc/self/ns/mnt: %s\n", strerror(errno));
    } else if (enter(argv[1], n, carry) > 0) {
        /* entered, but the copy is incomplete: back to where we came from */
        if (setns(self, CLONE_NEWNS) < 0) {
            fprintf(stderr, "dockyard-enter: setns back: %s\n", strerror(errno));
            return 125;
        }
    }
    if (self >= 0)
        close(self);
    for (int i = 0; i < n; i++)
        close(atoi(carry[2 * i]));
    /* setns(2) moved the working directory to the namespace's root; a
     * directory only the daemon's namespace has leaves it there */
    if (have_cwd && chdir(cwd) < 0)
        fprintf(stderr, "dockyard-enter: chdir %s: %s\n", cwd, strerror(errno));
    execv(prog[0], prog);
    fprintf(stderr, "dockyard-enter: exec %s: %s\n", prog[0], strerror(errno));
    return 125;
}
