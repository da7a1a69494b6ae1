/* The posix_spawn floor of `nanvix bench`: a static program that echoes its argument to stdout,
 * the same work as the echo function (input in, result out), as a host process. */
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1)
        write(1, argv[1], strlen(argv[1]));
    return 0;
}
