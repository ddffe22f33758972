/* Interpreter benchmark: a small stack-machine bytecode interpreter
 * (switch dispatch, function calls, string and record operations in the
 * spirit of Dhrystone) running a fixed program N times (argv[1]). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PUSH, LOAD, STORE, ADD, SUB, MUL, MOD, LT, JZ, JMP, CALL, RET, DUP, DROP, HALT, STRCP };

typedef struct { int kind; int value; char name[32]; } Record;

static int64_t run(const int32_t *code, int64_t *vars, Record *recs) {
    int64_t stack[64];
    int sp = 0, pc = 0, rsp = 0;
    int rstack[16];
    for (;;) {
        int32_t op = code[pc++];
        switch (op) {
        case PUSH: stack[sp++] = code[pc++]; break;
        case LOAD: stack[sp++] = vars[code[pc++]]; break;
        case STORE: vars[code[pc++]] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case JZ: { int32_t t = code[pc++]; if (!stack[--sp]) pc = t; break; }
        case JMP: pc = code[pc]; break;
        case CALL: rstack[rsp++] = pc + 1; pc = code[pc]; break;
        case RET: pc = rstack[--rsp]; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case DROP: sp--; break;
        case STRCP: {
            Record *r = &recs[stack[sp - 1] & 7];
            memcpy(r->name, "DHRYSTONE PROGRAM, SOME STRING", 31);
            r->value += r->name[stack[sp - 1] % 30];
            r->kind = r->value & 3;
            break;
        }
        case HALT: return stack[sp - 1];
        default: return -1;
        }
    }
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    /* i = 0; acc = 1; while (i < 20000) { acc = (acc * 31 + i) % 1000003; f(i); i = i + 1 } return acc
       where f mutates the record selected by its argument (string copy + arithmetic) */
    enum { LOOP = 8, END = 42, F = 45 };
    static const int32_t code[] = {
        PUSH, 0, STORE, 0, PUSH, 1, STORE, 1,
        /* LOOP */ LOAD, 0, PUSH, 20000, LT, JZ, END,
        LOAD, 1, PUSH, 31, MUL, LOAD, 0, ADD, PUSH, 1000003, MOD, STORE, 1,
        LOAD, 0, CALL, F, DROP,
        LOAD, 0, PUSH, 1, ADD, STORE, 0,
        JMP, LOOP,
        /* END */ LOAD, 1, HALT,
        /* F */ STRCP, RET,
    };
    int64_t vars[4] = {0};
    Record recs[8];
    memset(recs, 0, sizeof recs);
    int64_t sum = 0;
    for (int r = 0; r < reps; r++) sum += run(code, vars, recs);
    int64_t rv = 0;
    for (int i = 0; i < 8; i++) rv = rv * 7 + recs[i].value + recs[i].kind;
    printf("interp %d: %lld %lld\n", reps, (long long)sum, (long long)rv);
    return 0;
}
