// A compile-only stand-in for TFLM's tensorflow/lite/micro/micro_mutable_op_resolver.h: the same class template
// and the same Add* method names (copied from TFLM's header), no kernels. tests/test_micro.py compiles the C++
// that homl_edge.micro.setup_code writes against it, so a misspelled method fails the build.
#pragma once
#include "tensorflow/lite/schema/schema_generated.h"

namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver {
 public:
#define HOML_EDGE_OP(name) \
  TfLiteStatus Add##name() { return count_++ < tOpCount ? kTfLiteOk : kTfLiteError; }
  HOML_EDGE_OP(Abs) HOML_EDGE_OP(Add) HOML_EDGE_OP(AddN) HOML_EDGE_OP(ArgMax) HOML_EDGE_OP(ArgMin)
  HOML_EDGE_OP(AveragePool2D) HOML_EDGE_OP(BatchToSpaceNd) HOML_EDGE_OP(Cast) HOML_EDGE_OP(Ceil)
  HOML_EDGE_OP(CircularBuffer) HOML_EDGE_OP(Concatenation) HOML_EDGE_OP(Conv2D) HOML_EDGE_OP(Cos)
  HOML_EDGE_OP(CumSum) HOML_EDGE_OP(DepthToSpace) HOML_EDGE_OP(DepthwiseConv2D) HOML_EDGE_OP(Dequantize)
  HOML_EDGE_OP(DetectionPostprocess) HOML_EDGE_OP(Elu) HOML_EDGE_OP(Equal) HOML_EDGE_OP(EthosU) HOML_EDGE_OP(Exp)
  HOML_EDGE_OP(ExpandDims) HOML_EDGE_OP(Fill) HOML_EDGE_OP(Floor) HOML_EDGE_OP(FloorDiv) HOML_EDGE_OP(FloorMod)
  HOML_EDGE_OP(FullyConnected) HOML_EDGE_OP(Gather) HOML_EDGE_OP(GatherNd) HOML_EDGE_OP(Greater)
  HOML_EDGE_OP(GreaterEqual) HOML_EDGE_OP(HardSwish) HOML_EDGE_OP(If) HOML_EDGE_OP(L2Normalization)
  HOML_EDGE_OP(L2Pool2D) HOML_EDGE_OP(LeakyRelu) HOML_EDGE_OP(Less) HOML_EDGE_OP(LessEqual) HOML_EDGE_OP(Log)
  HOML_EDGE_OP(LogicalAnd) HOML_EDGE_OP(LogicalNot) HOML_EDGE_OP(LogicalOr) HOML_EDGE_OP(Logistic)
  HOML_EDGE_OP(Maximum) HOML_EDGE_OP(MaxPool2D) HOML_EDGE_OP(Mean) HOML_EDGE_OP(Minimum) HOML_EDGE_OP(Mul)
  HOML_EDGE_OP(Neg) HOML_EDGE_OP(NotEqual) HOML_EDGE_OP(Pack) HOML_EDGE_OP(Pad) HOML_EDGE_OP(PadV2)
  HOML_EDGE_OP(Prelu) HOML_EDGE_OP(Quantize) HOML_EDGE_OP(ReduceMax) HOML_EDGE_OP(Relu) HOML_EDGE_OP(Relu6)
  HOML_EDGE_OP(Reshape) HOML_EDGE_OP(ResizeBilinear) HOML_EDGE_OP(ResizeNearestNeighbor) HOML_EDGE_OP(Round)
  HOML_EDGE_OP(Rsqrt) HOML_EDGE_OP(Shape) HOML_EDGE_OP(Sin) HOML_EDGE_OP(Softmax) HOML_EDGE_OP(SpaceToBatchNd)
  HOML_EDGE_OP(SpaceToDepth) HOML_EDGE_OP(Split) HOML_EDGE_OP(SplitV) HOML_EDGE_OP(Squeeze) HOML_EDGE_OP(Sqrt)
  HOML_EDGE_OP(Square) HOML_EDGE_OP(StridedSlice) HOML_EDGE_OP(Sub) HOML_EDGE_OP(Svdf) HOML_EDGE_OP(Tanh)
  HOML_EDGE_OP(TransposeConv) HOML_EDGE_OP(Transpose) HOML_EDGE_OP(Unpack) HOML_EDGE_OP(ZerosLike)
  HOML_EDGE_OP(UnidirectionalSequenceLSTM)
#undef HOML_EDGE_OP
 private:
  unsigned int count_ = 0;
};
}  // namespace tflite
