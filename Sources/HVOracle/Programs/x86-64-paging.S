/* HVKit's x86 4-level guest-paging probe program (docs/oracle-protocol.md).
 * The same protocol as x86-paging.S, in long mode: the multiboot entry
 * (32-bit, no paging) turns on PAE, loads HVKit's PML4, sets EFER.LME and
 * NXE, CR0.PG and WP, and jumps to 64-bit code, which installs a 64-bit
 * #PF handler, a TSS and a DPL 3 gate at vector 32, and probes (reading,
 * writing back, calling page + 8) at CPL 0 or, when asked, each access on
 * its own at CPL 3 (IRETQ into a user trampoline page, INT 32 back). */
    .set PARAMS, 0x200000
    .set COM1, 0x3f8
    .set user_stack_top, 0x1f2000

    .code32
    .text
    .globl _start
    .align 4
multiboot:
    .long 0x1BADB002
    .long 0
    .long -0x1BADB002
_start:
    cli
    lgdt    gdt_desc
    mov     $stack_top, %esp
    /* Data pages: RET everywhere, the page's address in its first dword. */
    mov     PARAMS + 32, %ebx
2:  cmp     PARAMS + 40, %ebx
    jae     3f
    mov     %ebx, %edi
    mov     $0xc3c3c3c3, %eax
    mov     $1024, %ecx
    cld
    rep stosl
    mov     %ebx, (%ebx)
    add     $0x1000, %ebx
    jmp     2b
3:  mov     %cr4, %eax
    or      $0x20, %eax             /* PAE */
    or      PARAMS + 56, %eax       /* SMEP / SMAP as asked */
    mov     %eax, %cr4
    mov     PARAMS + 16, %eax
    mov     %eax, %cr3
    mov     $0xc0000080, %ecx
    rdmsr
    or      $0x900, %eax            /* LME, NXE */
    wrmsr
    mov     %cr0, %eax
    or      $0x80010000, %eax       /* PG | WP */
    mov     %eax, %cr0
    ljmp    $0x18, $long_mode

    .code64
long_mode:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    lea     pf_handler(%rip), %rax
    mov     %ax, idt + 14 * 16
    movw    $0x18, idt + 14 * 16 + 2
    movw    $0x8e00, idt + 14 * 16 + 4
    shr     $16, %rax
    mov     %ax, idt + 14 * 16 + 6
    shr     $16, %rax
    mov     %eax, idt + 14 * 16 + 8
    lea     back_handler(%rip), %rax
    mov     %ax, idt + 32 * 16
    movw    $0x18, idt + 32 * 16 + 2
    movw    $0xee00, idt + 32 * 16 + 4
    shr     $16, %rax
    mov     %ax, idt + 32 * 16 + 6
    shr     $16, %rax
    mov     %eax, idt + 32 * 16 + 8
    /* The 64-bit TSS: RSP0 for exceptions from CPL 3. */
    lea     stack_top(%rip), %rax
    mov     %rax, tss + 4
    lea     tss(%rip), %rax
    mov     %ax, gdt + 6 * 8 + 2
    shr     $16, %rax
    mov     %al, gdt + 6 * 8 + 4
    mov     %ah, gdt + 6 * 8 + 7
    shr     $16, %rax
    mov     %eax, gdt + 7 * 8
    mov     $0x30, %ax
    ltr     %ax
    lidt    idt_desc
    mov     $'S', %al
    call    putc
    mov     $'\n', %al
    call    putc
    mov     PARAMS + 24, %r12       /* probes left */
    mov     $PARAMS + 64, %r13      /* cursor */
probe:
    test    %r12, %r12
    jz      done
    mov     (%r13), %rbx
    mov     $0xffffffffffff, %rax   /* the GVA: low 48 bits, sign-extended */
    and     %rax, %rbx
    shl     $16, %rbx
    sar     $16, %rbx
    mov     %rsp, saved_rsp
    movl    $-1, pf_code
    lea     after_read(%rip), %rax
    mov     %rax, recover
    xor     %eax, %eax
    cmpl    $3, PARAMS + 48
    jne     1f
    lea     user_read(%rip), %rdx
    jmp     to_user
1:  mov     (%rbx), %eax
after_read:
    mov     %eax, value
    mov     pf_code, %eax
    mov     %eax, read_result
    movl    $-1, pf_code
    lea     after_write(%rip), %rax
    mov     %rax, recover
    mov     value, %eax
    cmpl    $3, PARAMS + 48
    jne     1f
    lea     user_write(%rip), %rdx
    jmp     to_user
1:  mov     %eax, (%rbx)
after_write:
    mov     saved_rsp, %rsp
    mov     pf_code, %eax
    mov     %eax, write_result
    movl    $-1, pf_code
    movl    $0xeeeeeeee, fetch_result
    testb   $0x80, 7(%r13)          /* bit 63: try the fetch */
    jz      after_fetch_skip
    lea     after_fetch(%rip), %rax
    mov     %rax, recover
    lea     8(%rbx), %rcx
    cmpl    $3, PARAMS + 48
    jne     1f
    lea     user_fetch(%rip), %rdx
    jmp     to_user
1:  call    *%rcx
after_fetch:
    mov     saved_rsp, %rsp
    mov     pf_code, %eax
    mov     %eax, fetch_result
after_fetch_skip:
    mov     read_result, %eax
    call    hex
    call    space
    mov     value, %eax
    call    hex
    call    space
    mov     write_result, %eax
    call    hex
    call    space
    mov     fetch_result, %eax
    call    hex
    mov     $'\n', %al
    call    putc
    add     $8, %r13
    dec     %r12
    jmp     probe
done:
    mov     $'E', %al
    call    putc
    mov     $'\n', %al
    call    putc
    mov     $0, %al
    out     %al, $0xf4
5:  hlt
    jmp     5b

/* eax: value to print as 8 hex digits. */
hex:
    mov     %eax, %r8d
    mov     $8, %r9d
6:  rol     $4, %r8d
    mov     %r8d, %eax
    and     $0xf, %eax
    cmp     $10, %eax
    jb      7f
    add     $('a' - 10 - '0'), %eax
7:  add     $'0', %eax
    call    putc
    dec     %r9d
    jnz     6b
    ret

space:
    mov     $' ', %al
putc:
    mov     %eax, %r10d
    mov     $COM1 + 5, %dx
8:  in      %dx, %al
    test    $0x20, %al
    jz      8b
    mov     %r10d, %eax
    mov     $COM1, %dx
    out     %al, %dx
    ret

/* Enters CPL 3 at %rdx (a trampoline) on the user stack; %rax, %rbx and
 * %rcx go along. */
to_user:
    pushq   $0x23                   /* SS */
    pushq   $user_stack_top         /* RSP */
    pushq   $0x2                    /* RFLAGS */
    pushq   $0x2b                   /* CS */
    pushq   %rdx                    /* RIP */
    iretq

/* INT 32 from the trampoline: back at CPL 0; resume where asked. */
back_handler:
    mov     saved_rsp, %rsp
    jmp     *recover

/* #PF: keep the error code, drop the frame, resume. */
pf_handler:
    pop     %rax
    mov     %eax, pf_code
    mov     saved_rsp, %rsp
    jmp     *recover

    .data
    .align 8
gdt:
    .quad   0
    .quad   0x00cf9a000000ffff      /* 0x08: code, 32-bit */
    .quad   0x00cf92000000ffff      /* 0x10: data */
    .quad   0x00af9a000000ffff      /* 0x18: code, 64-bit */
    .quad   0x00cff2000000ffff      /* 0x20: user data (selector 0x23) */
    .quad   0x00affa000000ffff      /* 0x28: user code, 64-bit (selector 0x2b) */
    .quad   0x0000890000000067      /* 0x30: the TSS, low half (base filled in) */
    .quad   0                       /* 0x38: the TSS, high half */
gdt_desc:
    .word   8 * 8 - 1
    .quad   gdt
    .align 16
idt:
    .fill   33 * 16, 1, 0
idt_desc:
    .word   33 * 16 - 1
    .quad   idt
    .align 8
recover: .quad 0
saved_rsp: .quad 0
pf_code: .long 0
value: .long 0
read_result: .long 0
write_result: .long 0
fetch_result: .long 0
    .align 16
tss:
    .fill   104, 1, 0

/* The trampolines, on their own user page (0x1f_0000, below the
 * parameters: the multiboot image is loaded as one blob). */
    .section .user, "ax"
user_read:
    mov     (%rbx), %eax
    int     $32
user_write:
    mov     %eax, (%rbx)
    int     $32
user_fetch:
    call    *%rcx
    int     $32

    .bss
    .align 16
    .space 8192
stack_top:
