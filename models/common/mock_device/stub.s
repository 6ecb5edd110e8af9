# Entry stub linked into every mock firmware/kernel ELF: the linker scripts say ENTRY(_start) and put
# *(.start) first in .text. It is never executed (mock clusters run nothing).
    .section .start,"ax"
    .globl _start
_start:
    nop
    nop
    j _start
