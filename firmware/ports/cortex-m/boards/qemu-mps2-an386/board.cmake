# QEMU mps2-an386: Cortex-M4F. Timer-based (ICOUNT) timing: QEMU has no DWT.
set(BOARD_CPU_FLAGS -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
set(BOARD_SOURCES ${CMAKE_CURRENT_LIST_DIR}/board.c)
set(BOARD_LINKER_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/link.ld)
# 16 model slots: a sweep over a family of up to 16 variants uploads each once, not once per repeat.
set(BOARD_DEFINITIONS BOARD_MODEL_CAPACITY=0x100000u BOARD_ARENA_CAPACITY=0x200000u BENCH_MAX_PAYLOAD=2048u
    BENCH_MODEL_SLOTS=16u)
set(BOARD_CYCLES none) # bench_port_cycles() is in board.c (timer0)
