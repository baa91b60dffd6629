// fetafix-dequantize QDQ.onnx FLOAT.onnx: the float model of a QDQ-quantized one (weights
// folded into float initializers, activation quantization replaced by its Clip), e.g. the
// float MobileNetV2 with real ImageNet weights derived from the asset's int8 model.
#include <cstdio>

#include "inject/dequantize.h"
#include "model/model.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s QDQ.onnx FLOAT.onnx\n", argv[0]);
    return 2;
  }
  auto qdq = fetafix::model::load_model(argv[1]);
  if (!qdq.ok()) {
    std::fprintf(stderr, "%s\n", qdq.error().message.c_str());
    return 2;
  }
  fetafix::inject::DequantizeReport report;
  auto f = fetafix::inject::dequantize_qdq(qdq->proto, &report);
  if (!f.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1], f.error().message.c_str());
    return 2;
  }
  if (auto st = fetafix::model::save_model(*f, argv[2], {argv[1]}); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().message.c_str());
    return 2;
  }
  std::printf("%s: %d weights folded, %d activation quantizations replaced by Clip, %d input dequantization kept\n",
              argv[2], report.weights_folded, report.activations_clipped, report.dequantize_kept);
  return 0;
}
