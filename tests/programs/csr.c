/* Zicsr on the FP CSRs fflags, frm and fcsr: every csrr* form, masking of
 * the written value, the views each CSR gives of the others, and the
 * user counters (monotonic only; values are not printed). */
#include "support/common.h"

#define CSRRW(csr, v) ({ u64 _o; __asm__ volatile("csrrw %0, " csr ", %1" : "=r"(_o) : "r"((u64)(v))); _o; })
#define CSRRS(csr, v) ({ u64 _o; __asm__ volatile("csrrs %0, " csr ", %1" : "=r"(_o) : "r"((u64)(v))); _o; })
#define CSRRC(csr, v) ({ u64 _o; __asm__ volatile("csrrc %0, " csr ", %1" : "=r"(_o) : "r"((u64)(v))); _o; })
#define CSRR(csr) ({ u64 _o; __asm__ volatile("csrr %0, " csr : "=r"(_o)); _o; })

static void show(const char *what) {
    printf("%-28s fcsr %03" PRIx64 " frm %" PRIx64 " fflags %02" PRIx64 "\n", what, CSRR("fcsr"), CSRR("frm"), CSRR("fflags"));
}

int main(void) {
    u64 o;
    show("initial");
    o = CSRRW("fcsr", 0xffffffffffffff7full); printf("old %03" PRIx64 "\n", o); show("csrrw fcsr ~0 (frm 3)");
    o = CSRRW("fflags", 0x3); printf("old %03" PRIx64 "\n", o); show("csrrw fflags 3");
    o = CSRRW("frm", 0x2); printf("old %03" PRIx64 "\n", o); show("csrrw frm 2");
    o = CSRRS("fflags", 0x14); printf("old %03" PRIx64 "\n", o); show("csrrs fflags 0x14");
    o = CSRRC("fflags", 0x1); printf("old %03" PRIx64 "\n", o); show("csrrc fflags 1");
    o = CSRRS("frm", 0x1); printf("old %03" PRIx64 "\n", o); show("csrrs frm 1");
    o = CSRRC("frm", 0x3); printf("old %03" PRIx64 "\n", o); show("csrrc frm 3");
    o = CSRRS("fcsr", 0x80); printf("old %03" PRIx64 "\n", o); show("csrrs fcsr 0x80 (frm 4)");
    o = CSRRC("fcsr", 0xff); printf("old %03" PRIx64 "\n", o); show("csrrc fcsr 0xff");
    __asm__ volatile("csrrwi %0, fflags, 0x1f" : "=r"(o)); show("csrrwi fflags 0x1f");
    __asm__ volatile("csrrci %0, fflags, 0x5" : "=r"(o)); show("csrrci fflags 5");
    __asm__ volatile("csrrsi %0, frm, 0x1" : "=r"(o)); show("csrrsi frm 1");
    __asm__ volatile("csrrwi %0, frm, 0x4" : "=r"(o)); show("csrrwi frm 4");
    __asm__ volatile("csrrwi %0, fcsr, 0x1b" : "=r"(o)); show("csrrwi fcsr 0x1b");
    __asm__ volatile("csrrci %0, fcsr, 0x1f" : "=r"(o)); show("csrrci fcsr 0x1f");
    /* csrrs/csrrc with x0 do not write; csrrw with rd = x0 writes */
    __asm__ volatile("csrrs x0, fcsr, x0"); show("csrrs x0 x0");
    __asm__ volatile("csrw fflags, %0" : : "r"((u64)0x7)); show("csrw fflags 7");
    __asm__ volatile("fsflags %0" : : "r"((u64)0x9)); show("fsflags 9");
    __asm__ volatile("fsrm %0" : : "r"((u64)0x1)); show("fsrm 1");
    __asm__ volatile("frflags %0" : "=r"(o)); printf("frflags %" PRIx64 "\n", o);
    __asm__ volatile("frrm %0" : "=r"(o)); printf("frrm %" PRIx64 "\n", o);
    __asm__ volatile("fscsr %0, %1" : "=r"(o) : "r"((u64)0x61)); printf("fscsr old %" PRIx64 "\n", o); show("fscsr 0x61");
    /* an FP op accrues flags on top of what is there */
    {
        double a = 1.0, b = 3.0, c;
        __asm__ volatile("csrw fcsr, zero\n\tfdiv.d %0, %1, %2" : "=f"(c) : "f"(a), "f"(b));
        show("after 1/3");
        __asm__ volatile("fdiv.d %0, %1, %2" : "=f"(c) : "f"(a), "f"(0.0));
        show("after 1/0");
        (void)c;
    }
    /* counters: readable from user mode and non-decreasing */
    {
        u64 c0, c1, t0, t1, i0, i1;
        __asm__ volatile("rdcycle %0\n\trdtime %1\n\trdinstret %2" : "=r"(c0), "=r"(t0), "=r"(i0));
        for (volatile int i = 0; i < 1000; i++) {}
        __asm__ volatile("rdcycle %0\n\trdtime %1\n\trdinstret %2" : "=r"(c1), "=r"(t1), "=r"(i1));
        printf("counters monotonic: cycle %d time %d instret %d\n", c1 >= c0, t1 >= t0, i1 > i0);
    }
    return 0;
}
