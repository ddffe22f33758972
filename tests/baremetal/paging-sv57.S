/*
 * paging-sv57: Sv57 translation (privileged spec v1.12 §4.6): 5-level
 * page tables, satp.MODE = 10. The checks are in paging.inc.
 */
#define LEVELS 5
#define SATP_MODE 10
#define VABITS 57
#include "paging.inc"
