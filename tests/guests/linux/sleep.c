/* Sleeps for the input's milliseconds (nanosleep), then prints "slept": the microkernel parks the
 * vCPU in the host until the deadline instead of spinning on its clock. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    char in[16] = {0};
    long ms = read(0, in, sizeof in - 1) > 0 ? atol(in) : 0;
    struct timespec t0, t1, ts = {ms / 1000, (ms % 1000) * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (nanosleep(&ts, NULL) != 0)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long took = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    printf(took >= ms * 1000000LL ? "slept\n" : "woke early\n");
    return 0;
}
