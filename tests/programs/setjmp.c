/* setjmp/longjmp: nested frames, the 0 -> 1 conversion, int and FP
 * volatile locals, sigsetjmp/siglongjmp without a mask. */
#include "support/common.h"
#include <setjmp.h>

static jmp_buf env, env2;
static int depth_reached;

static __attribute__((noinline)) void dive(int depth, int target) {
    volatile char pad[64];
    pad[depth % 64] = (char)depth;
    depth_reached = depth;
    if (depth >= target) longjmp(env, depth * 10 + pad[depth % 64] % 3);
    dive(depth + 1, target);
    pad[0]++;
}

static __attribute__((noinline)) void zero_jump(void) { longjmp(env2, 0); }

int main(void) {
    for (int t = 1; t <= 5; t++) {
        volatile int local = t * 100;
        volatile double fl = t * 1.25;
        int r = setjmp(env);
        if (r == 0) {
            local += 1;
            fl *= 2;
            dive(0, t * 7);
            printf("not reached\n");
        } else {
            printf("t %d: setjmp returned %d depth %d local %d fl %.3f\n", t, r, depth_reached, local, fl);
        }
    }
    int r = setjmp(env2);
    if (r == 0) zero_jump();
    printf("longjmp(0) delivers %d\n", r);
    {
        sigjmp_buf sj;
        volatile int n = 0;
        if (sigsetjmp(sj, 0) < 3) { n++; siglongjmp(sj, n); }
        printf("siglongjmp loop n %d\n", n);
    }
    return 0;
}
