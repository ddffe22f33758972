/*
 * paging-sv48: Sv48 translation (privileged spec v1.12 §4.5): 4-level
 * page tables, satp.MODE = 9. The checks are in paging.inc.
 */
#define LEVELS 4
#define SATP_MODE 9
#define VABITS 48
#include "paging.inc"
