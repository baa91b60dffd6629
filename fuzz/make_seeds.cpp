// Writes the seed corpora of the fuzz targets from the test fixtures: the models the tests
// build in code, patches made of every edit kind on the test CNN, and the presets (built-ins and
// the overrides of tests/data/fixtures/presets). Images are copied from tests/data/fixtures by
// scripts/fuzz.sh. Usage: fuzz_make_seeds OUT_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "data/preprocess.h"
#include "match/cnn_fixture.h"
#include "model/edit.h"
#include "model/model.h"
#include "repair/patch.h"
#include "support/models.h"

namespace {

namespace fs = std::filesystem;
using fetafix::model::Edit;

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

void write_models(const fs::path& dir) {
  using fetafix::testing::CnnOptions;
  int n = 0;
  auto save = [&](const onnx::ModelProto& m) { write(dir / ("model" + std::to_string(n++) + ".onnx"), fetafix::model::serialize_model(m)); };
  save(fetafix::testing::dominant_channel_model(false));
  save(fetafix::testing::dominant_channel_model(true));
  save(fetafix::testing::channel_normalising_model(3));
  save(fetafix::testing::build_cnn());
  CnnOptions o;
  o.bn = fetafix::testing::BnForm::kMulAdd;
  o.weights_as_constants = true;
  o.insert_noops = true;
  save(fetafix::testing::build_cnn(o));
  o = {};
  o.qdq_weights = true;
  o.hwio_weights = true;
  o.hard_swish = true;
  save(fetafix::testing::build_cnn(o));
}

void write_patches(const fs::path& dir) {
  const onnx::ModelProto cnn = fetafix::testing::build_cnn();
  std::vector<std::vector<Edit>> patches;
  onnx::AttributeProto group;
  group.set_name("group");
  group.set_type(onnx::AttributeProto::INT);
  group.set_i(1);
  patches.push_back({Edit::set_attribute("conv1", group), Edit::remove_attribute("conv2", "pads")});
  const auto& w = cnn.graph().initializer(0);
  fetafix::Tensor t(static_cast<fetafix::DType>(w.data_type()), {w.dims().begin(), w.dims().end()});
  patches.push_back({Edit::set_weight(w.name(), t)});
  onnx::NodeProto relu;
  relu.set_name("extra_relu");
  relu.set_op_type("Relu");
  relu.add_input(cnn.graph().input(0).name());
  relu.add_output("extra_relu_out");
  patches.push_back({Edit::insert_node(relu, 0), Edit::set_node_input(cnn.graph().node(0).name(), 0, "extra_relu_out")});
  int n = 0;
  for (const auto& edits : patches) {
    fetafix::repair::Patch p;
    p.edits = edits;
    write(dir / ("patch" + std::to_string(n++) + ".json"), fetafix::repair::patch_to_json(p).dump());
  }
  fetafix::repair::Patch pp;
  pp.preprocess = fetafix::data::preset_by_name("caffe").value();
  write(dir / ("patch" + std::to_string(n++) + ".json"), fetafix::repair::patch_to_json(pp).dump());
}

void write_presets(const fs::path& dir, const fs::path& fixtures) {
  int n = 0;
  for (const auto& name : fetafix::data::preset_names())
    write(dir / ("preset" + std::to_string(n++) + ".json"), fetafix::data::preset_by_name(name)->to_json().dump());
  std::ifstream in(fixtures / "presets" / "presets.json");
  const auto cases = nlohmann::json::parse(in, nullptr, false);
  if (!cases.is_array()) return;
  for (const auto& c : cases)
    if (c.contains("overrides") && !c["overrides"].empty())
      write(dir / ("preset" + std::to_string(n++) + ".json"), c["overrides"].dump());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR TESTS_DATA_FIXTURES_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  write_models(out / "model");
  write_patches(out / "patch");
  write_presets(out / "preset", argv[2]);
  return 0;
}
