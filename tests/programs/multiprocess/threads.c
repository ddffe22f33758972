/* pthreads: a mutex-protected counter, a condition-variable queue,
 * join with return values, thread-local storage, thread ids, a barrier,
 * atomics, detached threads with a semaphore, and fork from a thread. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define ITERS 20000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static long atomic_counter;
static __thread int tls_value = 5;

static void *count(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
        __atomic_fetch_add(&atomic_counter, 1, __ATOMIC_SEQ_CST);
    }
    tls_value += (int)id;
    return (void *)(id * id + tls_value);
}

#define QCAP 8
static int queue[QCAP], qhead, qlen;
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notempty = PTHREAD_COND_INITIALIZER, notfull = PTHREAD_COND_INITIALIZER;

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&qmu);
        while (qlen == QCAP) pthread_cond_wait(&notfull, &qmu);
        queue[(qhead + qlen++) % QCAP] = i;
        pthread_cond_signal(&notempty);
        pthread_mutex_unlock(&qmu);
    }
    return NULL;
}

static void *consumer(void *arg) {
    long sum = 0;
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&qmu);
        while (qlen == 0) pthread_cond_wait(&notempty, &qmu);
        sum += queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        pthread_cond_signal(&notfull);
        pthread_mutex_unlock(&qmu);
    }
    *(long *)arg = sum;
    return NULL;
}

static pthread_barrier_t barrier;
static int arrived;
static void *at_barrier(void *arg) {
    (void)arg;
    __atomic_fetch_add(&arrived, 1, __ATOMIC_SEQ_CST);
    int r = pthread_barrier_wait(&barrier);
    return (void *)(long)(arrived == 3 && (r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD));
}

static sem_t done;
static void *detached(void *arg) {
    (void)arg;
    sem_post(&done);
    return NULL;
}

static void *ids(void *arg) {
    long *out = arg;
    out[0] = getpid();
    out[1] = syscall(SYS_gettid);
    return NULL;
}

static void *forker(void *arg) {
    (void)arg;
    pid_t p = fork();
    if (p == 0) _exit(tls_value);
    int st;
    waitpid(p, &st, 0);
    return (void *)(long)WEXITSTATUS(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, count, (void *)i);
    long rets = 0;
    for (int i = 0; i < THREADS; i++) { void *r; pthread_join(t[i], &r); rets += (long)r; }
    printf("counter=%ld atomic=%ld joined sum=%ld main tls=%d\n", counter, atomic_counter, rets, tls_value);

    pthread_t prod, cons[2];
    long sums[2] = { 0, 0 };
    pthread_create(&prod, NULL, producer, NULL);
    for (int i = 0; i < 2; i++) pthread_create(&cons[i], NULL, consumer, &sums[i]);
    pthread_join(prod, NULL);
    for (int i = 0; i < 2; i++) pthread_join(cons[i], NULL);
    printf("queue total=%ld\n", sums[0] + sums[1]);

    pthread_barrier_init(&barrier, NULL, 3);
    pthread_t b[3];
    long bok = 0;
    for (int i = 0; i < 3; i++) pthread_create(&b[i], NULL, at_barrier, NULL);
    for (int i = 0; i < 3; i++) { void *r; pthread_join(b[i], &r); bok += (long)r; }
    printf("barrier ok=%ld\n", bok);

    sem_init(&done, 0, 0);
    for (int i = 0; i < 5; i++) {
        pthread_t d;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_create(&d, &at, detached, NULL);
        pthread_attr_destroy(&at);
    }
    for (int i = 0; i < 5; i++) sem_wait(&done);
    printf("detached threads done\n");

    long id[2];
    pthread_t it;
    pthread_create(&it, NULL, ids, id);
    pthread_join(it, NULL);
    printf("thread: same pid=%d own tid=%d\n", id[0] == getpid(), id[1] != getpid() && id[1] > 0);

    pthread_t ft;
    void *fr;
    pthread_create(&ft, NULL, forker, NULL);
    pthread_join(ft, &fr);
    printf("fork from a thread: child exit %ld\n", (long)fr);
    return 0;
}
