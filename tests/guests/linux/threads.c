/* POSIX threads on the microkernel's threads: a mutex, a condition variable, thread-local
 * storage, a sleep, join. Prints "total <n> tls <ok> woke <n>". */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <sched.h>

#define THREADS 4
#define ROUNDS 1000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long total;
static int ready;
static __thread long mine;

static void *work(void *arg)
{
    long id = (long)arg;
    mine = id * 1000;
    pthread_mutex_lock(&lock);
    while (!ready)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        total++;
        pthread_mutex_unlock(&lock);
        if (i % 100 == 0)
            sched_yield();
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    return (void *)(mine == id * 1000 ? 1L : 0L);
}

int main(void)
{
    pthread_t t[THREADS];
    mine = -1;
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, work, (void *)(i + 1))) {
            printf("pthread_create failed\n");
            return 1;
        }
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    long ok = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (long)r;
    }
    printf("total %ld tls %ld main_tls %d\n", total, ok, mine == -1);
    return 0;
}
