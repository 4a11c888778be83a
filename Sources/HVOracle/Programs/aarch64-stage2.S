// HVKit's AArch64 stage-2 probe program (docs/oracle-protocol.md).
// Runs at EL2 on qemu-system-aarch64 -M virt,virtualization=on -cpu max.
// Reads the parameter block at 0x4030_0000 (QEMU puts its DTB at the start of RAM), installs VTTBR_EL2 and
// VTCR_EL2 from HVKit, turns stage 2 on (HCR_EL2.VM, with DC so that the
// disabled stage 1 counts as normal memory and PAR reports stage 2's
// attributes), then for every probe IPA runs AT S12E1R and AT S12E1W and
// prints both PAR_EL1 values in hex on the PL011. Then it exits through
// semihosting.
    .equ PARAMS, 0x40300000
    .equ UART, 0x09000000

    .text
    .globl _start
_start:
    ldr     x0, =PARAMS
    ldr     x1, [x0, #16]
    msr     vtcr_el2, x1
    ldr     x1, [x0, #8]
    msr     vttbr_el2, x1
    mov     x1, #1                  // VM
    orr     x1, x1, #(1 << 12)      // DC
    orr     x1, x1, #(1 << 31)      // RW: EL1 is AArch64
    msr     hcr_el2, x1
    msr     sctlr_el1, xzr
    isb
    tlbi    vmalls12e1
    dsb     sy
    isb
    ldr     x19, [x0, #24]          // probe count
    add     x20, x0, #32            // first probe
probe:
    cbz     x19, done
    ldr     x21, [x20], #8
    at      s12e1r, x21
    isb
    mrs     x22, par_el1
    at      s12e1w, x21
    isb
    mrs     x23, par_el1
    mov     x0, x22
    bl      hex
    mov     x0, #' '
    bl      putc
    mov     x0, x23
    bl      hex
    mov     x0, #'\n'
    bl      putc
    sub     x19, x19, #1
    b       probe
done:
    mov     x0, #'E'
    bl      putc
    mov     x0, #'\n'
    bl      putc
    mov     x0, #0x18               // SYS_EXIT
    ldr     x1, =exit_block
    hlt     #0xf000
1:  b       1b

// x0: value to print as 16 hex digits.
hex:
    mov     x9, x0
    mov     x10, #16
    mov     x11, x30
2:  lsr     x0, x9, #60
    lsl     x9, x9, #4
    cmp     x0, #10
    b.lt    3f
    add     x0, x0, #('a' - 10 - '0')
3:  add     x0, x0, #'0'
    bl      putc
    subs    x10, x10, #1
    b.ne    2b
    mov     x30, x11
    ret

putc:
    ldr     x12, =UART
4:  ldr     w13, [x12, #0x18]       // FR
    tbnz    w13, #5, 4b             // TXFF
    strb    w0, [x12]
    ret

    .balign 8
exit_block:
    .quad   0x20026                 // ADP_Stopped_ApplicationExit
    .quad   0
