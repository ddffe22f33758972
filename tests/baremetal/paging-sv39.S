/*
 * paging-sv39: Sv39 translation (privileged spec v1.12 §4.4): 3-level
 * page tables, satp.MODE = 8. The checks are in paging.inc.
 */
#define LEVELS 3
#define SATP_MODE 8
#define VABITS 39
#include "paging.inc"
