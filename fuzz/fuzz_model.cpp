// libFuzzer target: ONNX model bytes -> parse_model (protobuf, external-data refusal,
// check_model_structure) -> GraphView (names, producers, order, dominators, regions, shapes)
// -> deterministic serialization. Anything it accepts must survive the graph view.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/graph.h"
#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = fetafix::model::parse_model(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
  if (!model.ok()) return 0;
  auto view = fetafix::model::GraphView::build(model->proto.graph());
  if (!view.ok()) __builtin_trap();  // check_model_structure promised a buildable view
  const auto& v = *view;
  for (size_t i = 0; i < v.node_count(); ++i) {
    (void)v.region_to_dominator(i);
    for (const auto& in : v.node(i).input()) {
      (void)v.shape(in);
      (void)v.producer(in);
    }
  }
  if (v.node_count() > 1) (void)v.nodes_between(v.topological_order().front(), v.topological_order().back());
  (void)fetafix::model::serialize_model(model->proto);
  return 0;
}
