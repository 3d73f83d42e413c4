// Compile-only stand-in for TFLM's micro_interpreter.h (see micro_mutable_op_resolver.h beside it).
#pragma once
#include <cstddef>
#include <cstdint>
#include "tensorflow/lite/schema/schema_generated.h"

namespace tflite {
class MicroInterpreter {
 public:
  template <typename Resolver>
  MicroInterpreter(const Model*, const Resolver&, uint8_t*, size_t) {}
  TfLiteStatus AllocateTensors() { return kTfLiteOk; }
};
}  // namespace tflite
