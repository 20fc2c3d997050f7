/* A tiny stack-machine interpreter dispatching through a table of handler
 * function pointers (call_indirect through a funcref table filled by an
 * element segment). */

typedef struct VM {
    int stack[64];
    int sp;
    int pc;
    int acc;
} VM;

typedef void (*Handler)(VM *, int);

static void op_push(VM *vm, int arg) { vm->stack[vm->sp++] = arg; }
static void op_add(VM *vm, int arg) { vm->sp--; vm->stack[vm->sp - 1] += vm->stack[vm->sp]; }
static void op_sub(VM *vm, int arg) { vm->sp--; vm->stack[vm->sp - 1] -= vm->stack[vm->sp]; }
static void op_mul(VM *vm, int arg) { vm->sp--; vm->stack[vm->sp - 1] *= vm->stack[vm->sp]; }
static void op_xor(VM *vm, int arg) { vm->sp--; vm->stack[vm->sp - 1] ^= vm->stack[vm->sp]; }
static void op_dup(VM *vm, int arg) { vm->stack[vm->sp] = vm->stack[vm->sp - 1]; vm->sp++; }
static void op_swap(VM *vm, int arg) {
    int t = vm->stack[vm->sp - 1];
    vm->stack[vm->sp - 1] = vm->stack[vm->sp - 2];
    vm->stack[vm->sp - 2] = t;
}
static void op_shl(VM *vm, int arg) { vm->stack[vm->sp - 1] <<= (arg & 31); }
static void op_shr(VM *vm, int arg) { vm->stack[vm->sp - 1] = (int)((unsigned)vm->stack[vm->sp - 1] >> (arg & 31)); }
static void op_acc(VM *vm, int arg) { vm->acc += vm->stack[--vm->sp]; }
static void op_jnz(VM *vm, int arg) { if (vm->stack[--vm->sp]) vm->pc = arg - 1; }
static void op_dec(VM *vm, int arg) { vm->stack[vm->sp - 1] -= 1; }
static void op_nop(VM *vm, int arg) {}

static Handler handlers[] = {
    op_push, op_add, op_sub, op_mul, op_xor, op_dup, op_swap,
    op_shl, op_shr, op_acc, op_jnz, op_dec, op_nop,
};

enum { PUSH, ADD, SUB, MUL, XOR, DUP, SWAP, SHL, SHR, ACC, JNZ, DEC, NOP, HALT };

/* (opcode, argument) pairs: a counted loop mixing the counter into acc. */
static const int program[][2] = {
    /* 0 */ {PUSH, 0},      /* counter (patched) */
    /* 1 */ {DUP, 0},  {PUSH, 2654435}, {MUL, 0}, {SHR, 3}, {DUP, 0}, {SHL, 5},
    /* 7 */ {XOR, 0},  {ACC, 0}, {DUP, 0}, {PUSH, 7}, {SWAP, 0}, {SUB, 0}, {ACC, 0},
    /* 14 */ {DEC, 0}, {DUP, 0}, {JNZ, 1}, {NOP, 0}, {HALT, 0},
};

/* Run the loop program for n iterations; returns the accumulator. */
int run_program(int n) {
    VM vm;
    vm.sp = 0;
    vm.acc = 0;
    vm.pc = 0;
    for (;;) {
        int op = program[vm.pc][0];
        int arg = vm.pc == 0 ? n : program[vm.pc][1];
        if (op == HALT)
            break;
        handlers[op](&vm, arg);
        vm.pc++;
    }
    return vm.acc;
}
