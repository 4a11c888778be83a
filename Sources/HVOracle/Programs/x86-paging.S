/* HVKit's x86 guest-paging probe program (docs/oracle-protocol.md).
 * A multiboot image for qemu-system-x86_64 -kernel: starts in 32-bit
 * protected mode without paging. Reads the parameter block at 0x20_0000,
 * fills the data area's pages (each page: its own physical address in the
 * first dword, RET everywhere else), installs a #PF handler, enables
 * 32-bit paging (CR4.PSE) or PAE (EFER.NXE) with CR0.WP, and CR4.SMEP and
 * SMAP when asked, over HVKit's tables, then for each probe page reads its
 * first dword, writes it back and (when asked) calls page + 8, at CPL 0
 * or, when asked, each access on its own at CPL 3 (entered by IRET into a
 * user trampoline page, left by INT 0x80), printing per probe on COM1:
 * read-result value write-result fetch-result (result: the #PF error code,
 * or ffffffff for no fault), after a line "S" (the BIOS prints before it).
 * Ends through isa-debug-exit. */
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
    ljmp    $0x08, $1f
1:  mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     %ax, %fs
    mov     %ax, %gs
    mov     $stack_top, %esp
    mov     $pf_handler, %eax
    mov     %ax, idt + 14 * 8
    movw    $0x08, idt + 14 * 8 + 2
    movw    $0x8e00, idt + 14 * 8 + 4
    shr     $16, %eax
    mov     %ax, idt + 14 * 8 + 6
    mov     $back_handler, %eax     /* vector 32: CPL 3 returns here (DPL 3 gate) */
    mov     %ax, idt + 32 * 8
    movw    $0x08, idt + 32 * 8 + 2
    movw    $0xee00, idt + 32 * 8 + 4
    shr     $16, %eax
    mov     %ax, idt + 32 * 8 + 6
    /* The TSS: the ring-0 stack an exception from CPL 3 switches to. */
    movl    $stack_top, tss + 4
    movl    $0x10, tss + 8
    mov     $tss, %eax
    mov     %ax, gdt + 5 * 8 + 2
    shr     $16, %eax
    mov     %al, gdt + 5 * 8 + 4
    mov     %ah, gdt + 5 * 8 + 7
    mov     $0x28, %ax
    ltr     %ax
    lidt    idt_desc
    /* A start line, so the answer can be told from SeaBIOS's output before it. */
    mov     $'S', %al
    call    putc
    mov     $'\n', %al
    call    putc
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
3:  mov     PARAMS + 8, %eax
    test    %eax, %eax
    jz      4f                      /* mode 0: no paging at all */
    cmp     $3, %eax
    je      pae
    mov     %cr4, %ecx
    or      $0x10, %ecx             /* PSE */
    mov     %ecx, %cr4
    jmp     paging
pae:
    mov     %cr4, %ecx
    or      $0x20, %ecx             /* PAE */
    mov     %ecx, %cr4
    mov     $0xc0000080, %ecx
    rdmsr
    or      $0x800, %eax            /* EFER.NXE */
    wrmsr
paging:
    mov     %cr4, %ecx
    or      PARAMS + 56, %ecx       /* SMEP / SMAP as asked */
    mov     %ecx, %cr4
    mov     PARAMS + 16, %eax
    mov     %eax, %cr3
    mov     %cr0, %eax
    or      $0x80010000, %eax       /* PG | WP */
    mov     %eax, %cr0
    jmp     4f
4:  mov     PARAMS + 24, %eax
    mov     %eax, remaining
    movl    $PARAMS + 64, cursor
probe:
    cmpl    $0, remaining
    je      done
    mov     cursor, %edi
    mov     (%edi), %ebx            /* the probe page */
    mov     %esp, saved_esp
    movl    $-1, pf_code
    movl    $after_read, recover
    xor     %eax, %eax
    cmpl    $3, PARAMS + 48
    jne     1f
    mov     $user_read, %edx
    jmp     to_user
1:  mov     (%ebx), %eax
after_read:
    mov     %eax, value
    mov     pf_code, %eax
    mov     %eax, read_result
    movl    $-1, pf_code
    movl    $after_write, recover
    mov     value, %eax
    cmpl    $3, PARAMS + 48
    jne     1f
    mov     $user_write, %edx
    jmp     to_user
1:  mov     %eax, (%ebx)
after_write:
    mov     saved_esp, %esp
    mov     pf_code, %eax
    mov     %eax, write_result
    movl    $-1, pf_code
    movl    $0xeeeeeeee, fetch_result
    mov     cursor, %edi
    cmpl    $0, 4(%edi)
    je      after_fetch_skip
    movl    $after_fetch, recover
    lea     8(%ebx), %ecx
    cmpl    $3, PARAMS + 48
    jne     1f
    mov     $user_fetch, %edx
    jmp     to_user
1:  call    *%ecx
after_fetch:
    mov     saved_esp, %esp
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
    addl    $8, cursor
    decl    remaining
    jmp     probe
done:
    mov     $'E', %al
    call    putc
    mov     $'\n', %al
    call    putc
    mov     $0, %al
    out     %al, $0xf4              /* isa-debug-exit: QEMU exits with status 1 */
5:  hlt
    jmp     5b

/* eax: value to print as 8 hex digits. */
hex:
    mov     %eax, %edx
    mov     $8, %ecx
6:  rol     $4, %edx
    mov     %edx, %eax
    and     $0xf, %eax
    cmp     $10, %eax
    jb      7f
    add     $('a' - 10 - '0'), %eax
7:  add     $'0', %eax
    push    %ecx
    push    %edx
    call    putc
    pop     %edx
    pop     %ecx
    loop    6b
    ret

space:
    mov     $' ', %al
putc:
    push    %eax
    mov     $COM1 + 5, %dx
8:  in      %dx, %al
    test    $0x20, %al
    jz      8b
    pop     %eax
    mov     $COM1, %dx
    out     %al, %dx
    ret

/* Enters CPL 3 at %edx (a trampoline) with the user stack; %eax, %ebx
 * and %ecx go along. User data segments first: IRET to an outer level
 * nulls segment registers whose DPL is below the new CPL. */
to_user:
    mov     $0x23, %di
    mov     %di, %ds
    mov     %di, %es
    pushl   $0x23                   /* SS */
    pushl   $user_stack_top         /* ESP */
    pushl   $0x2                    /* EFLAGS */
    pushl   $0x1b                   /* CS */
    pushl   %edx                    /* EIP */
    iret

/* INT 32 from the trampoline: back at CPL 0; resume where asked. */
back_handler:
    mov     saved_esp, %esp
    jmp     *recover

/* #PF: keep the error code, drop the frame (and a call's return address), resume. */
pf_handler:
    pop     %eax
    mov     %eax, pf_code
    mov     saved_esp, %esp
    jmp     *recover

    .data
    .align 8
gdt:
    .quad   0
    .quad   0x00cf9a000000ffff      /* 0x08: code, flat */
    .quad   0x00cf92000000ffff      /* 0x10: data, flat */
    .quad   0x00cffa000000ffff      /* 0x18: user code, flat (selector 0x1b) */
    .quad   0x00cff2000000ffff      /* 0x20: user data, flat (selector 0x23) */
    .quad   0x0000890000000067      /* 0x28: the TSS (base filled in at start) */
gdt_desc:
    .word   6 * 8 - 1
    .long   gdt
    .align 8
idt:
    .fill   33 * 8, 1, 0
idt_desc:
    .word   33 * 8 - 1
    .long   idt
pf_code: .long 0
recover: .long 0
saved_esp: .long 0
remaining: .long 0
cursor: .long 0
value: .long 0
read_result: .long 0
write_result: .long 0
fetch_result: .long 0
    .align 16
tss:
    .fill   104, 1, 0

/* The trampolines, on their own user page (0x1f_0000), and the user stack
 * page above it: the only pages CPL 3 may use. Both lie below the
 * parameters: QEMU loads the multiboot image as one blob from its lowest
 * to its highest address, which would cover anything in between. */
    .section .user, "ax"
user_read:
    mov     (%ebx), %eax
    int     $32
user_write:
    mov     %eax, (%ebx)
    int     $32
user_fetch:
    call    *%ecx
    int     $32

    .bss
    .align 16
    .space 8192
stack_top:
