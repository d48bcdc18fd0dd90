# TensorFlow Lite Micro as a static library for bare-metal firmware builds.
#
# Interface (kept stable; other firmware, e.g. an MLPerf Tiny DUT, builds against it):
#
#   include(<repo>/firmware/backends/tflm/tflm.cmake)
#
#   BENCH_TFLM_COMMIT      the pinned tflite-micro commit, read from TFLM_COMMIT beside this file
#                          (the one place it is pinned; the Python side reads the same file).
#
#   bench_tflm_tree(<out_var> [TFLM_DIR <dir>] [CMSIS_NN])
#       <out_var> = a source tree made by tflite-micro's create_tflm_tree.py. With TFLM_DIR (or the
#       TFLM_DIR cache variable) that tree as is; without, tflite-micro is fetched at
#       BENCH_TFLM_COMMIT (never a branch) and the script runs at configure time (network, python3)
#       with TARGET=cortex_m_generic TARGET_ARCH=cortex-m4 (+ OPTIMIZED_KERNEL_DIR=cmsis_nn).
#
#   bench_tflm_library(<name> TFLM_DIR <tree> CPU_FLAGS <flags...> [CMSIS_NN] [OPT <-O2>])
#       A STATIC library target <name>: TFLM's runtime and every kernel in <tree>; with CMSIS_NN
#       also CMSIS-NN's C sources (<tree> must then be a tree generated with
#       OPTIMIZED_KERNEL_DIR=cmsis_nn, whose kernels call CMSIS-NN) and -DCMSIS_NN.
#       PUBLIC (propagated to whatever links <name>): the include directories, TF_LITE_STATIC_MEMORY
#       (and CMSIS_NN), and the C++ dialect TFLM needs (C++17, no RTTI/exceptions).
#       The library's own compile options are exactly CPU_FLAGS + OPT + TFLM's; it does not inherit
#       the directory's (our -Werror C warnings would reject third-party code).
#       Left out: tests, examples, benchmarks, the signal library, kissfft, test helpers, and
#       cortex_m_generic/micro_time.cc (it reads DWT->CYCCNT through a device header): the firmware
#       linking <name> defines tflite::ticks_per_second() and tflite::GetCurrentTimeTicks() itself,
#       and a _sbrk (newlib-nano's malloc, pulled in by operator delete and vsnprintf, needs one).
#       ${BENCH_TFLM_PORT_SOURCES} (firmware/backends/tflm/tflm_port.cc) does both on
#       bench_port_cycles() and with no heap: add it to your target, or bring your own.
#       Links -lstdc++ (libstdc++-arm-none-eabi-newlib) and -lm; objects are only pulled when used,
#       so an image carries the kernels its resolver registers and nothing more.
#
#   bench_add_tflm(<target>)   (the bench firmware's own use: BACKEND=tflm | tflm-cmsis-nn)
#
# TFLM is never copied into this repository.
include_guard(GLOBAL)
include(FetchContent)

file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/TFLM_COMMIT BENCH_TFLM_COMMIT LIMIT_COUNT 1 REGEX "^[0-9a-f]+$")
if(NOT BENCH_TFLM_COMMIT)
  message(FATAL_ERROR "${CMAKE_CURRENT_LIST_DIR}/TFLM_COMMIT must hold the pinned tflite-micro commit")
endif()
set(BENCH_TFLM_DIR ${CMAKE_CURRENT_LIST_DIR})
set(BENCH_TFLM_PORT_SOURCES ${CMAKE_CURRENT_LIST_DIR}/tflm_port.cc)

function(bench_tflm_tree out_var)
  cmake_parse_arguments(A "CMSIS_NN" "TFLM_DIR" "" ${ARGN})
  set(tree ${A_TFLM_DIR})
  if(NOT tree)
    set(tree ${TFLM_DIR})
  endif()
  if(tree)
    if(NOT EXISTS ${tree}/tensorflow/lite/micro/micro_interpreter.h)
      message(FATAL_ERROR "TFLM_DIR=${tree} is not a tree made by create_tflm_tree.py "
                          "(no tensorflow/lite/micro/micro_interpreter.h)")
    endif()
    set(${out_var} ${tree} PARENT_SCOPE)
    return()
  endif()
  FetchContent_Declare(tflite_micro GIT_REPOSITORY https://github.com/tensorflow/tflite-micro.git
                       GIT_TAG ${BENCH_TFLM_COMMIT})
  FetchContent_GetProperties(tflite_micro)
  if(NOT tflite_micro_POPULATED)
    FetchContent_Populate(tflite_micro)
  endif()
  set(options "TARGET=cortex_m_generic TARGET_ARCH=cortex-m4")
  set(tree ${CMAKE_BINARY_DIR}/tflm-tree-${BENCH_TFLM_COMMIT})
  if(A_CMSIS_NN)
    string(APPEND options " OPTIMIZED_KERNEL_DIR=cmsis_nn")
    string(APPEND tree "-cmsis-nn")
  endif()
  if(NOT EXISTS ${tree}/tensorflow)
    execute_process(COMMAND python3 tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py
                            --makefile_options=${options} ${tree}
                    WORKING_DIRECTORY ${tflite_micro_SOURCE_DIR} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "create_tflm_tree.py failed (${rc}); pass -DTFLM_DIR=<generated tree> instead")
    endif()
  endif()
  set(${out_var} ${tree} PARENT_SCOPE)
endfunction()

function(bench_tflm_library name)
  cmake_parse_arguments(A "CMSIS_NN" "TFLM_DIR;OPT" "CPU_FLAGS" ${ARGN})
  if(NOT A_TFLM_DIR)
    message(FATAL_ERROR "bench_tflm_library(${name}): TFLM_DIR <tree> is required")
  endif()
  if(NOT A_OPT)
    set(A_OPT -O2)
  endif()
  set(tree ${A_TFLM_DIR})
  file(GLOB_RECURSE sources ${tree}/tensorflow/*.cc ${tree}/tensorflow/*.c)
  list(FILTER sources EXCLUDE REGEX
       "_test\\.cc$|/examples/|/benchmarks/|/testing/|/tools/|/python/|test_helper|mock_micro_graph|fake_micro_context|/cortex_m_generic/micro_time\\.cc$")
  set(includes ${tree} ${tree}/third_party/flatbuffers/include ${tree}/third_party/gemmlowp ${tree}/third_party/ruy)
  set(defines TF_LITE_STATIC_MEMORY)
  if(A_CMSIS_NN)
    if(NOT EXISTS ${tree}/third_party/cmsis_nn/Include/arm_nnfunctions.h)
      message(FATAL_ERROR "bench_tflm_library(${name} CMSIS_NN): ${tree} has no third_party/cmsis_nn; "
                          "generate it with OPTIMIZED_KERNEL_DIR=cmsis_nn")
    endif()
    file(GLOB_RECURSE nn_sources ${tree}/third_party/cmsis_nn/Source/*.c)
    list(APPEND sources ${nn_sources})
    list(APPEND includes ${tree}/third_party/cmsis_nn ${tree}/third_party/cmsis_nn/Include
         ${tree}/third_party/cmsis/CMSIS/Core/Include)
    list(APPEND defines CMSIS_NN)
  endif()
  add_library(${name} STATIC ${sources})
  target_include_directories(${name} SYSTEM PUBLIC ${includes})
  target_compile_definitions(${name} PUBLIC ${defines})
  # Replace, not extend, what the directory set: third-party code gets its own flags.
  set_property(TARGET ${name} PROPERTY COMPILE_OPTIONS
               ${A_CPU_FLAGS} ${A_OPT} -ffunction-sections -fdata-sections -fmessage-length=0
               "$<$<COMPILE_LANGUAGE:C>:-std=c11>"
               "$<$<COMPILE_LANGUAGE:CXX>:-fno-unwind-tables;-fno-use-cxa-atexit>")
  target_compile_options(${name} PUBLIC
                         "$<$<COMPILE_LANGUAGE:CXX>:-std=c++17;-fno-rtti;-fno-exceptions;-fno-threadsafe-statics>")
  target_link_libraries(${name} INTERFACE stdc++ m)
endfunction()

# The bench firmware's TFLM backend: BACKEND=tflm (reference kernels) or tflm-cmsis-nn.
function(bench_add_tflm target)
  set(nn "")
  if(BACKEND STREQUAL "tflm-cmsis-nn")
    set(nn CMSIS_NN)
  endif()
  bench_tflm_tree(tree ${nn})
  bench_tflm_library(bench_tflm TFLM_DIR ${tree} CPU_FLAGS ${BOARD_CPU_FLAGS} ${nn})
  target_sources(${target} PRIVATE ${BENCH_TFLM_DIR}/tflm_backend.cc ${BENCH_TFLM_PORT_SOURCES})
  target_compile_definitions(${target} PRIVATE BENCH_TFLM_COMMIT="${BENCH_TFLM_COMMIT}"
                             BENCH_BACKEND_NAME="${BACKEND}" BENCH_TFLM_LOG_CALLBACK)
  target_link_libraries(${target} PRIVATE bench_tflm)
endfunction()
