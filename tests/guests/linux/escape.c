/* Tries to leave the tenant's tree every way the layer offers: "..", absolute paths, a symlink
 * planted in the tree (by the test, on the host), rename and mkdir across "..". Each line is
 * "name result errno". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(name, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s %ld %d\n", name, r_, r_ < 0 ? errno : 0); } while (0)

int main(void)
{
    struct stat st;
    CHECK("open_dotdot", open("../../../../etc/passwd", O_RDONLY));
    CHECK("open_abs", open("/etc/passwd", O_RDONLY));
    CHECK("chdir_up", chdir("../../.."));
    char cwd[64];
    printf("cwd %s 0\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    CHECK("mkdir_up", mkdir("../../outside", 0700));
    CHECK("stat_made", stat("/outside", &st));
    int fd = open("inside.txt", O_WRONLY | O_CREAT, 0600);
    CHECK("create", fd);
    CHECK("write", write(fd, "x", 1));
    close(fd);
    CHECK("rename_up", rename("inside.txt", "../../../moved.txt"));
    CHECK("stat_moved", stat("moved.txt", &st));
    CHECK("open_symlink_out", open("evil/passwd", O_RDONLY));
    CHECK("stat_symlink_out", stat("evil", &st));
    CHECK("opendir_symlink_out", opendir("evil") ? 0 : -1);
    CHECK("open_proc", open("/proc/self/maps", O_RDONLY));
    return 0;
}
