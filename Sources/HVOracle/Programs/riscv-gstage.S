# HVKit's RISC-V G-stage probe program (docs/oracle-protocol.md).
# Runs in M-mode on qemu-system-riscv64 -M virt -cpu rv64,h=true -bios none.
# Reads the parameter block at 0x8010_0000, fills the scratch range with
# each word's own address, points hgatp at HVKit's table, then for every
# probe GPA tries HLV.D (read), HSV.D (write back what was read) with
# vsatp bare, and an instruction fetch: it enters VS-mode at the GPA
# itself (the CPU runs without the C extension, so every word the scratch
# holds, an address, is an illegal instruction: a fetch that translates
# ends in cause 2, one that does not in cause 20). HLVX.HU would be the
# direct test, but QEMU 7.2 checks read, not execute, permission for it.
# One line per probe on the UART: load-cause value-or-mtval2 store-cause
# fetch-cause, in hex (cause 0 = no trap). Then it powers off.
    .equ PARAMS, 0x80100000
    .equ UART, 0x10000000
    .equ TEST_DEVICE, 0x100000

    .section .text
    .globl _start
_start:
    li      s8, 0
    la      t0, trap
    csrw    mtvec, t0
    li      t0, -1                  # PMP: all of memory for lower privileges
    csrw    pmpaddr0, t0
    li      t0, 0x1f                # NAPOT, R W X
    csrw    pmpcfg0, t0
    li      t0, 1
    slli    t0, t0, 62              # PBMTE
    csrs    0x30a, t0               # menvcfg
    csrs    0x60a, t0               # henvcfg
    li      t0, 0x100               # hstatus.SPVP: accesses as VS-mode
    csrs    hstatus, t0
    csrw    vsatp, zero
    li      s0, PARAMS
    ld      t0, 8(s0)
    csrw    hgatp, t0
    hfence.gvma zero, zero
    ld      t1, 24(s0)              # scratch start
    ld      t2, 32(s0)              # scratch end
fill:
    bgeu    t1, t2, filled
    sd      t1, 0(t1)
    addi    t1, t1, 8
    j       fill
filled:
    ld      s1, 16(s0)              # probe count
    addi    s2, s0, 40              # first probe
probe:
    beqz    s1, done
    ld      s3, 0(s2)
    li      t6, 0
    li      a0, 0
    hlv.d   a0, (s3)
    mv      s4, t6
    mv      s5, a0
    beqz    s4, 1f
    mv      s5, t5                  # on a fault: mtval2
    li      a0, 0
1:  li      t6, 0
    hsv.d   a0, (s3)
    mv      s6, t6
    li      t6, 0                   # fetch: enter VS-mode at the GPA
    li      s8, 1
    csrw    mepc, s3
    li      t0, 0x1800
    csrc    mstatus, t0             # MPP = 0 ...
    li      t0, 0x800
    csrs    mstatus, t0             # ... then S
    li      t0, 1
    slli    t0, t0, 39
    csrs    mstatus, t0             # MPV = 1
    mret
back:
    mv      s7, t6
    mv      a0, s4
    call    hex
    call    space
    mv      a0, s5
    call    hex
    call    space
    mv      a0, s6
    call    hex
    call    space
    mv      a0, s7
    call    hex
    li      a0, '\n'
    call    putc
    addi    s2, s2, 8
    addi    s1, s1, -1
    j       probe
done:
    li      a0, 'E'
    call    putc
    li      a0, '\n'
    call    putc
    li      t0, TEST_DEVICE
    li      t1, 0x5555
    sw      t1, 0(t0)
1:  wfi
    j       1b

# a0: value to print as 16 hex digits.
hex:
    mv      t3, a0
    li      t4, 16
    mv      a7, ra
2:  srli    a0, t3, 60
    slli    t3, t3, 4
    li      t0, 10
    blt     a0, t0, 3f
    addi    a0, a0, 'a' - 10 - '0'
3:  addi    a0, a0, '0'
    call    putc
    addi    t4, t4, -1
    bnez    t4, 2b
    mv      ra, a7
    ret

space:
    li      a0, ' '
putc:
    li      t0, UART
4:  lbu     t1, 5(t0)
    andi    t1, t1, 0x20
    beqz    t1, 4b
    sb      a0, 0(t0)
    ret

# A trap: record mcause in t6 and mtval2 in t5; skip the instruction, or
# after a fetch probe (s8 set) return to M-mode at `back`.
    .balign 4
trap:
    csrr    t6, mcause
    csrr    t5, mtval2
    bnez    s8, fetched
    csrr    t0, mepc
    addi    t0, t0, 4
    csrw    mepc, t0
    mret
fetched:
    li      s8, 0
    la      t0, back
    csrw    mepc, t0
    li      t0, 0x1800
    csrs    mstatus, t0             # MPP = M
    li      t0, 1
    slli    t0, t0, 39
    csrc    mstatus, t0             # MPV = 0
    mret
