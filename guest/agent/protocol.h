/*
 * tsvm guest agent protocol (docs/vm-agent.md). Frames, little-endian:
 *   u16 type | u16 flags (0) | u32 id | u32 length | payload[length]
 * Must match src/host/vm-agent/frame.ts.
 */
#ifndef TSVM_AGENT_PROTOCOL_H
#define TSVM_AGENT_PROTOCOL_H

#define AGENT_VERSION 1
#define FRAME_HEADER 12
#define FRAME_MAX_PAYLOAD (1u << 20)

/* host -> guest */
#define F_HELLO 0x01    /* agent answers READY */
#define F_START 0x02    /* id = new process id; payload: start record */
#define F_STDIN 0x03    /* data; empty = close stdin */
#define F_RESIZE 0x04   /* u16 rows, u16 cols */
#define F_SIGNAL 0x05   /* u32 signo */
#define F_SHUTDOWN 0x06 /* sync, power off */
#define F_CONFIG 0x07   /* a spare VM's container: tsvm.root=... tsvm.hostname=... (kernel command line syntax); READY answers */
/* guest -> host */
#define F_READY 0x81   /* u32 version, u32 uptime ms, hostname */
#define F_STARTED 0x82 /* u32 guest pid */
#define F_STDOUT 0x83
#define F_STDERR 0x84
#define F_EXIT 0x85  /* u32 status: N, or 128+signal */
#define F_ERROR 0x86 /* UTF-8 message; id 0 = agent-wide */

/* START record flags */
#define START_TTY 1u
#define START_MAIN 2u
#define START_PIDNS 4u /* with START_MAIN: the process is PID 1 of a new PID namespace (the container's) */
#define START_FIXED 24 /* u32 flags, u32 uid, u32 gid, u16 rows, u16 cols, u32 argc, u32 envc */

#endif
