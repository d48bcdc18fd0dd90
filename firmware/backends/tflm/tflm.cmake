# bench_add_tflm(target): compile TFLite Micro into `target` with the bench TFLM backend.
#
# TFLM_DIR: a source tree made by tflite-micro's
#   python3 tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py <out>
# (it bundles the flatbuffers/gemmlowp/ruy headers TFLM needs). Without TFLM_DIR, the tflite-micro
# repository is fetched at TFLM_TAG with FetchContent and that script is run at configure time
# (needs network and python3). TFLM is never copied into this repository.
include(FetchContent)

function(bench_add_tflm target)
  set(tree ${TFLM_DIR})
  if(NOT tree)
    FetchContent_Declare(tflite_micro GIT_REPOSITORY https://github.com/tensorflow/tflite-micro.git
                         GIT_TAG ${TFLM_TAG} GIT_SHALLOW TRUE)
    FetchContent_GetProperties(tflite_micro)
    if(NOT tflite_micro_POPULATED)
      FetchContent_Populate(tflite_micro)
    endif()
    set(tree ${CMAKE_BINARY_DIR}/tflm-tree)
    if(NOT EXISTS ${tree}/tensorflow)
      execute_process(COMMAND python3 tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py ${tree}
                      WORKING_DIRECTORY ${tflite_micro_SOURCE_DIR} RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "create_tflm_tree.py failed (${rc}); pass -DTFLM_DIR=<generated tree> instead")
      endif()
    endif()
  endif()
  file(GLOB_RECURSE tflm_sources ${tree}/tensorflow/*.cc ${tree}/tensorflow/*.c)
  list(FILTER tflm_sources EXCLUDE REGEX "_test\\.cc$|/examples/|/benchmarks/")
  target_sources(${target} PRIVATE ${tflm_sources} ${FW}/backends/tflm/tflm_backend.cc)
  target_include_directories(${target} PRIVATE ${tree} ${tree}/third_party/flatbuffers/include
                             ${tree}/third_party/gemmlowp ${tree}/third_party/ruy ${tree}/third_party/kissfft)
  target_compile_definitions(${target} PRIVATE TF_LITE_STATIC_MEMORY TF_LITE_DISABLE_X86_NEON
                             BENCH_TFLM_VERSION="${TFLM_TAG}")
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-std=c++17 -fno-rtti -fno-exceptions
                         -fno-threadsafe-statics -Wno-unused-parameter>)
  target_link_options(${target} PRIVATE -lstdc++)
endfunction()
