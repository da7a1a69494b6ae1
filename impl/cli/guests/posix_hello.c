/* hello as a plain POSIX program (nanvix's musl, static). */
#include <stdio.h>

int main(void)
{
    fputs("hello", stdout);
    return 0;
}
