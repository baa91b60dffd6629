// fetafix-op-forms MODEL.onnx: the operator forms of a model (localize/op_forms.h,
// docs/op-forms.md), one line each, then how many of each function; to see how a converter spelled
// the activations, or why two models' forms compare as they do.
#include <cstdio>
#include <map>

#include "localize/op_forms.h"
#include "model/model.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.onnx\n", argv[0]);
    return 2;
  }
  auto m = fetafix::model::load_model(argv[1]);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.error().message.c_str());
    return 2;
  }
  auto view = fetafix::model::GraphView::build(m->proto.graph());
  if (!view.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1], view.error().message.c_str());
    return 2;
  }
  std::map<std::string, int> counts;
  for (const auto& f : fetafix::localize::find_op_forms(m->proto, *view)) {
    std::printf("%-40s %-28s %s\n", f.node_names.back().c_str(), f.spelling.c_str(), f.describe().c_str());
    ++counts[f.describe()];
  }
  std::printf("\n");
  for (const auto& [description, n] : counts) std::printf("%4d  %s\n", n, description.c_str());
  return 0;
}
