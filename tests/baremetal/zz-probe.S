#include "common.h"
  .text
  .globl test_main
test_main:
  rdtime t0
  csrr t0, CSR_STIMECMP
  li t0, -1
  csrw CSR_MENVCFG, t0
  csrr t0, CSR_STIMECMP
  csrr t0, mip
  KV mip, t0
  li a0, 0
  SVC SVC_EXIT
