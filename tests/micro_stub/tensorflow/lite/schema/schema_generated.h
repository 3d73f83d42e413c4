// Compile-only stand-in for the TFLite schema (see ../micro/micro_mutable_op_resolver.h).
#pragma once
#include <cstdint>
#define TFLITE_SCHEMA_VERSION 3
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
struct Model {
  uint32_t version() const { return TFLITE_SCHEMA_VERSION; }
};
inline const Model* GetModel(const void* buffer) { return static_cast<const Model*>(buffer); }
}  // namespace tflite
