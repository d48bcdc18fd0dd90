// The TFLite Micro backend: bench/backend.h on tflite::MicroInterpreter.
//
// Thin on purpose: the model stays in the core's upload buffer, the interpreter is built in static
// storage with placement new (no heap), operators come from a MicroMutableOpResolver holding the
// builtin operators common TinyML models use (only the kernels registered here are linked: the
// static library gives the linker nothing else), and a MicroProfilerInterface forwards TFLM's
// per-operator events to the core's profile hooks. Built by firmware/backends/tflm/tflm.cmake
// (BACKEND=tflm | tflm-cmsis-nn) and by ESP-IDF with Espressif's esp-tflite-micro component.
#include <stdint.h>
#include <string.h>

#include <new>

#include "bench/backend.h"
#include "bench/status.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"
#ifdef BENCH_TFLM_LOG_CALLBACK
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#endif

#ifndef BENCH_TFLM_MAX_OPS
#define BENCH_TFLM_MAX_OPS 256
#endif

namespace {

constexpr int kOperators = 43;
using Resolver = tflite::MicroMutableOpResolver<kOperators>;

// Per-op events of one Invoke(), numbered in execution order.
class HookProfiler : public tflite::MicroProfilerInterface {
 public:
  void Start(const bench_op_hooks* hooks) {
    hooks_ = hooks;
    next_ = 0;
  }
  void Stop() { hooks_ = nullptr; }
  uint32_t BeginEvent(const char* tag) override {
    (void)tag;
    const uint32_t op = next_++;
    if (hooks_ != nullptr && hooks_->op_begin != nullptr) hooks_->op_begin(hooks_->ctx, op);
    return op;
  }
  void EndEvent(uint32_t event_handle) override {
    if (hooks_ != nullptr && hooks_->op_end != nullptr) hooks_->op_end(hooks_->ctx, event_handle);
  }

 private:
  const bench_op_hooks* hooks_ = nullptr;
  uint32_t next_ = 0;
};

alignas(Resolver) uint8_t resolver_storage[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
Resolver* resolver = nullptr;
tflite::MicroInterpreter* interpreter = nullptr;
HookProfiler profiler;
uint16_t op_codes[BENCH_TFLM_MAX_OPS];
uint32_t n_ops = 0;

const Resolver& GetResolver() {
  if (resolver == nullptr) {
    resolver = new (resolver_storage) Resolver();
    resolver->AddConv2D();
    resolver->AddDepthwiseConv2D();
    resolver->AddFullyConnected();
    resolver->AddTransposeConv();
    resolver->AddAveragePool2D();
    resolver->AddMaxPool2D();
    resolver->AddAdd();
    resolver->AddSub();
    resolver->AddMul();
    resolver->AddMean();
    resolver->AddSum();
    resolver->AddPad();
    resolver->AddPadV2();
    resolver->AddReshape();
    resolver->AddSqueeze();
    resolver->AddExpandDims();
    resolver->AddShape();
    resolver->AddPack();
    resolver->AddUnpack();
    resolver->AddSplit();
    resolver->AddSplitV();
    resolver->AddSoftmax();
    resolver->AddQuantize();
    resolver->AddDequantize();
    resolver->AddLogistic();
    resolver->AddTanh();
    resolver->AddRelu();
    resolver->AddRelu6();
    resolver->AddHardSwish();
    resolver->AddLeakyRelu();
    resolver->AddPrelu();
    resolver->AddMaximum();
    resolver->AddMinimum();
    resolver->AddConcatenation();
    resolver->AddStridedSlice();
    resolver->AddSlice();
    resolver->AddTranspose();
    resolver->AddSvdf();
    resolver->AddUnidirectionalSequenceLSTM();
    resolver->AddBatchMatMul();
    resolver->AddResizeNearestNeighbor();
    resolver->AddReduceMax();
    resolver->AddArgMax();
  }
  return *resolver;
}

void Copy(char* dst, size_t cap, const char* src) {
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = 0;
}

// TFLM says why it failed only through DebugLog (e.g. "Failed to allocate tail memory. Requested:
// 2048, available 512, missing: 1536"): keep its last line so the error on the wire carries it.
char last_log[120];

#ifdef BENCH_TFLM_LOG_CALLBACK
void KeepLog(const char* s) {
  if (s == nullptr || s[0] == 0 || (s[0] == '\n' && s[1] == 0)) return;
  Copy(last_log, sizeof last_log, s);
  for (char* c = last_log; *c; ++c) {
    if (*c == '\n' || *c == '\r') *c = ' ';
  }
}
#endif

int Fail(bench_backend_error* err, uint8_t status, const char* message) {
  err->status = status;
  Copy(err->message, sizeof err->message, message);
  return -1;
}

// The message the caller reports: TFLM's last log line when there is one, else `fallback`.
int FailLogged(bench_backend_error* err, uint8_t status, const char* fallback) {
  return Fail(err, status, last_log[0] ? last_log : fallback);
}

// The first operator the resolver lacks, reported by name before TFLM tries (and only logs it).
int CheckOperators(const tflite::Model* model, bench_backend_error* err) {
  const auto* subgraphs = model->subgraphs();
  const auto* codes = model->operator_codes();
  if (subgraphs == nullptr || subgraphs->size() < 1 || codes == nullptr) {
    return Fail(err, BENCH_E_MODEL_INVALID, "model has no subgraph or operator codes");
  }
  const auto* ops = subgraphs->Get(0)->operators();
  n_ops = 0;
  if (ops == nullptr) return 0;
  if (ops->size() > BENCH_TFLM_MAX_OPS) return Fail(err, BENCH_E_MODEL_INVALID, "too many operators");
  for (uint32_t i = 0; i < ops->size(); ++i) {
    const uint32_t index = ops->Get(i)->opcode_index();
    if (index >= codes->size()) return Fail(err, BENCH_E_MODEL_INVALID, "operator code index out of range");
    const tflite::OperatorCode* code = codes->Get(index);
    const tflite::BuiltinOperator builtin = tflite::GetBuiltinCode(code);
    op_codes[i] = static_cast<uint16_t>(builtin);
    const bool custom = builtin == tflite::BuiltinOperator_CUSTOM;
    const bool found = custom ? (code->custom_code() != nullptr && GetResolver().FindOp(code->custom_code()->c_str()))
                              : GetResolver().FindOp(builtin) != nullptr;
    if (!found) {
      err->status = BENCH_E_UNSUPPORTED_OP;
      err->builtin_code = static_cast<uint16_t>(builtin);
      err->op_index = static_cast<uint16_t>(i);
      const char* name = custom && code->custom_code() ? code->custom_code()->c_str()
                                                       : tflite::EnumNameBuiltinOperator(builtin);
      Copy(err->op_name, sizeof err->op_name, name ? name : "UNKNOWN");
      Copy(err->message, sizeof err->message, "operator not in this firmware's resolver");
      return -1;
    }
  }
  n_ops = ops->size();
  return 0;
}

// TfLiteType (c/common.h) numbers FLOAT32 1 and FLOAT16 10; the protocol speaks TFLite's schema
// TensorType (FLOAT32 0, FLOAT16 1). The integer types share their numbers.
uint8_t SchemaType(TfLiteType t) {
  switch (t) {
    case kTfLiteFloat32: return 0;
    case kTfLiteFloat16: return 1;
    default: return static_cast<uint8_t>(t);
  }
}

TfLiteTensor* Io(int output, uint32_t index) {
  if (interpreter == nullptr) return nullptr;
  if (index >= (output ? interpreter->outputs_size() : interpreter->inputs_size())) return nullptr;
  return output ? interpreter->output(index) : interpreter->input(index);
}

}  // namespace

extern "C" {

#ifndef BENCH_BACKEND_NAME
#define BENCH_BACKEND_NAME "tflm"
#endif
#ifndef BENCH_TFLM_COMMIT
#define BENCH_TFLM_COMMIT "unknown"
#endif

const char* bench_backend_name(void) { return BENCH_BACKEND_NAME; }

// The tflite-micro commit (firmware/backends/tflm/TFLM_COMMIT, or the ESP-IDF component's version).
const char* bench_backend_version(void) { return BENCH_TFLM_COMMIT; }

void bench_backend_reset(void) {
  if (interpreter != nullptr) {
    interpreter->~MicroInterpreter();
    interpreter = nullptr;
  }
  n_ops = 0;
}

int bench_backend_allocate(const uint8_t* model_data, uint32_t size, uint8_t* arena, uint32_t capacity,
                           uint32_t* used, bench_backend_error* err) {
  memset(err, 0, sizeof *err);
  bench_backend_reset();
#ifdef BENCH_TFLM_LOG_CALLBACK
  RegisterDebugLogCallback(KeepLog);
#endif
  // The flatbuffer verifier needs more code than TFLM itself; the core already checked the CRC,
  // and a model that passes CRC but is hostile is out of scope for the TFLM build (the reference
  // backend reads every length with bounds checks).
  if (size < 8) return Fail(err, BENCH_E_MODEL_INVALID, "model too short");
  const tflite::Model* model = tflite::GetModel(model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) return Fail(err, BENCH_E_MODEL_INVALID, "schema version is not 3");
  if (CheckOperators(model, err)) return -1;
  interpreter = new (interpreter_storage)
      tflite::MicroInterpreter(model, GetResolver(), arena, capacity, nullptr, &profiler);
  last_log[0] = 0;
  if (interpreter->AllocateTensors() != kTfLiteOk) {
    bench_backend_reset();
    // TFLM stops at the first allocation that fails, so it cannot say what the whole model needs;
    // the protocol allows 0 ("cannot tell"). The host finds the true minimum by search.
    err->required = 0;
    return FailLogged(err, BENCH_E_ARENA_TOO_SMALL, "TFLM could not allocate the tensors in the arena");
  }
  *used = static_cast<uint32_t>(interpreter->arena_used_bytes());
  return 0;
}

uint32_t bench_backend_tensor_count(int output) {
  if (interpreter == nullptr) return 0;
  return static_cast<uint32_t>(output ? interpreter->outputs_size() : interpreter->inputs_size());
}

int bench_backend_tensor_desc(int output, uint32_t index, bench_tensor_desc* d) {
  const TfLiteTensor* t = Io(output, index);
  if (t == nullptr) return -1;
  memset(d, 0, sizeof *d);
  d->type = SchemaType(t->type);
  d->ndims = static_cast<uint8_t>(t->dims->size < BENCH_MAX_DIMS ? t->dims->size : BENCH_MAX_DIMS);
  for (int i = 0; i < d->ndims; ++i) d->dims[i] = static_cast<uint32_t>(t->dims->data[i]);
  d->bytes = static_cast<uint32_t>(t->bytes);
  d->scale = t->params.scale;
  d->zero_point = t->params.zero_point;
  return 0;
}

uint8_t* bench_backend_tensor_data(int output, uint32_t index) {
  TfLiteTensor* t = Io(output, index);
  return t ? static_cast<uint8_t*>(t->data.data) : nullptr;
}

uint32_t bench_backend_op_count(void) { return interpreter ? n_ops : 0; }

uint16_t bench_backend_op_code(uint32_t op_index) { return op_index < n_ops ? op_codes[op_index] : 0; }

int bench_backend_invoke(const bench_op_hooks* hooks, bench_backend_error* err) {
  if (interpreter == nullptr) return Fail(err, BENCH_E_STATE, "not allocated");
  last_log[0] = 0;
  profiler.Start(hooks);
  const TfLiteStatus status = interpreter->Invoke();
  profiler.Stop();
  return status == kTfLiteOk ? 0 : FailLogged(err, BENCH_E_INVOKE_FAILED, "MicroInterpreter::Invoke failed");
}

}  // extern "C"
