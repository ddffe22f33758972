/*
 * _start for the "static-pie" linkage of the test programs. Debian
 * bookworm's cross glibc (2.36) ships no rcrt1.o and its libc.a has no
 * _dl_relocate_static_pie, so this start code does that job: it applies
 * the image's own dynamic relocations (RELATIVE, 64, TLS_TPREL64) at the
 * load bias the loader chose, records the bias as the main link map's
 * l_addr (glibc uses it to find the TLS image and the RELRO region), then
 * enters __libc_start_main like Scrt1.o does.
 */
	.section .text
	.globl _start
	.type _start, @function
_start:
	.option push
	.option norelax
	mv s0, sp			/* s0 = initial sp (argc, argv, envp, auxv) */
	mv s1, a0			/* s1 = rtld_fini from the kernel */
	lla s2, __ehdr_start		/* s2 = load bias (link address 0) */
	lla t1, _DYNAMIC
	li a1, 0			/* DT_RELA */
	li a2, 0			/* DT_RELASZ */
	li s3, 0			/* DT_SYMTAB */
1:	ld t2, 0(t1)
	beqz t2, 3f
	ld t0, 8(t1)
	li t3, 7
	bne t2, t3, 2f
	mv a1, t0
2:	li t3, 8
	bne t2, t3, 21f
	mv a2, t0
21:	li t3, 6
	bne t2, t3, 22f
	add s3, t0, s2
22:	addi t1, t1, 16
	j 1b
3:	beqz a1, 6f
	add a1, a1, s2
	add a2, a1, a2
4:	bgeu a1, a2, 6f
	ld t4, 0(a1)			/* r_offset */
	add t4, t4, s2
	ld t5, 16(a1)			/* r_addend */
	lwu t2, 8(a1)			/* type */
	lwu t0, 12(a1)			/* symbol index */
	beqz t2, 5f			/* R_RISCV_NONE */
	li t3, 3			/* R_RISCV_RELATIVE: B + A */
	bne t2, t3, 41f
	add t5, t5, s2
	j 49f
41:	li t3, 24			/* symbol value -> t6 */
	mul t6, t0, t3
	add t6, t6, s3
	beqz t0, 42f
	ld t0, 8(t6)			/* st_value */
	lhu t6, 6(t6)			/* st_shndx */
	j 43f
42:	li t0, 0
	li t6, 0
43:	li t3, 11			/* R_RISCV_TLS_TPREL64: S + A (TLS offset 0) */
	beq t2, t3, 48f
	li t3, 2			/* R_RISCV_64: S + A */
	beq t2, t3, 44f
	ebreak				/* unexpected relocation type */
44:	beqz t6, 48f			/* undefined (weak): S = 0 */
	li t3, 0xfff1			/* SHN_ABS: not biased */
	beq t6, t3, 48f
	add t0, t0, s2
48:	add t5, t5, t0
49:	sd t5, 0(t4)
5:	addi a1, a1, 24
	j 4b
6:	lla t0, _dl_ns			/* _dl_ns[0]._ns_loaded->l_addr = bias */
	ld t0, 0(t0)
	sd s2, 0(t0)
13:	lla gp, __global_pointer$
	.option pop
	mv a5, s1
	lla a0, main
	ld a1, 0(s0)
	addi a2, s0, 8
	andi sp, s0, -16
	li a3, 0
	li a4, 0
	mv a6, sp
	call __libc_start_main
	ebreak
	.size _start, .-_start

	.section .rodata
	.globl _IO_stdin_used
	.align 2
_IO_stdin_used:
	.word 0x20001
	.data
	.globl __data_start
__data_start:
	.weak data_start
data_start = __data_start
