// The fault matrix, in the manner of llama.cpp's test-backend-ops: one table, one row per fault
// fetafix can plant (every inject::supported_faults() entry) and per benign rewrite, on the
// in-code fixtures and synthetic photos. Each row plants its fault with inject and runs what
// `fetafix localize` and `fetafix repair` run:
//   fault rows:  localize reports a finding of the row's type naming the planted node (one of the
//                nodes the injection's ground truth lists, or the row's own, or none for
//                input-level faults); the repair leaves no image disagreeing; its patch, written
//                as JSON and read back, replays on the Target to the repaired model byte for byte;
//   same-output rows (benign rewrites, and faults such as cg:transpose-pair that compute the
//                same): the Target agrees with the Source on every image, localize reports no
//                fault (what it lists is harmless on these samples, equivalent or a note) and the
//                repair keeps nothing.
// Adding a fault = one row here (the last test fails until every supported fault has one).
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "inject/inject.h"
#include "inject/normalising_model.h"
#include "localize/localize.h"
#include "match/cnn_fixture.h"
#include "matrix/matrix_support.h"
#include "model/model.h"
#include "repair/driver.h"
#include "repair/patch.h"
#include "support/photos.h"
#include "support/repair_options.h"

namespace fetafix {
namespace {

using localize::FaultType;
using localize::Finding;

enum class Fixture {
  kCnn,             // tests/match/cnn_fixture.h: convs with BN, a depthwise conv, branches, Gemm head
  kHardSwishCnn,    // the same with x * Clip(x + 3, 0, 6) / 6 activations
  kNormalisingCnn,  // tests/inject/normalising_model.h: InceptionV3's in-graph input normalisation
};

// Where the row's finding must point. kTruth: at a node the injection's ground truth lists.
inline const std::string kTruth = "<a node of the ground truth>";

enum class Outcome {
  kRepaired,     // localized (type and node) and repaired to 0; the patch replays
  kSameOutputs,  // the Target computes what the Source does: nothing disagrees, nothing is kept
};

struct Row {
  std::string name;                 // the test's name
  std::vector<std::string> specs;   // inject specs, applied in order
  Fixture fixture = Fixture::kCnn;
  std::optional<FaultType> type;    // nullopt: benign rewrites
  std::string node = kTruth;        // the finding's Target node: kTruth, a name, or "" (the input)
  std::string preset = "raw";       // both models' preset (the photos' preprocessing)
  // Benign rewrites and faults that compute the same (a transpose pair) leave every label alone.
  Outcome outcome = type ? Outcome::kRepaired : Outcome::kSameOutputs;
};

void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

// The table. Where a fault's default node would make the Target unrunnable (a stride or dilation
// before the residual Add changes a shape the Add needs), the spec names a node it can change.
const std::vector<Row>& rows() {
  static const std::vector<Row> table{
      {"WbFp16", {"wb:fp16"}, Fixture::kCnn, FaultType::kWB},
      {"WbBf16", {"wb:bf16"}, Fixture::kCnn, FaultType::kWB},
      {"WbInt8Tensor", {"wb:int8-tensor"}, Fixture::kCnn, FaultType::kWB},
      {"WbInt8Channel", {"wb:int8-channel"}, Fixture::kCnn, FaultType::kWB},
      {"LhDropPads", {"lh:drop-pads"}, Fixture::kCnn, FaultType::kLH},
      {"LhStrides", {"lh:strides=2:node=conv5"}, Fixture::kCnn, FaultType::kLH},
      {"LhDilations", {"lh:dilations=2:node=conv6"}, Fixture::kCnn, FaultType::kLH},
      {"LhEpsilon", {"lh:epsilon=0.5"}, Fixture::kCnn, FaultType::kLH},
      {"LhClipMaxRemoved", {"lh:clip-max-removed:node=all"}, Fixture::kHardSwishCnn, FaultType::kLH},
      {"LhActivationSubstituted", {"lh:activation=relu:node=all"}, Fixture::kHardSwishCnn, FaultType::kLH},
      {"TssInputTranspose", {"tss:input-transpose=0,3,2,1"}, Fixture::kCnn, FaultType::kTSS, kTruth, "torch"},
      {"TssGatherAxis", {"tss:gather-axis"}, Fixture::kNormalisingCnn, FaultType::kTSS},
      {"IdInputSize", {"id:input-size=40"}, Fixture::kCnn, FaultType::kID, ""},
      {"CgExtraOutput", {"cg:extra-output=conv3_relu"}, Fixture::kCnn, FaultType::kCG, "conv3_relu"},
      {"CgAddPad", {"cg:add-pad:node=conv5:pads=2"}, Fixture::kCnn, FaultType::kCG, "conv5"},
      {.name = "CgTransposePair", .specs = {"cg:transpose-pair"}, .type = FaultType::kCG, .outcome = Outcome::kSameOutputs},
      {"PpPreset", {"pp:preset=caffe:from=torch"}, Fixture::kCnn, FaultType::kPP, "", "torch"},
      {"BenignFoldBn", {"benign:fold-bn"}},
      {"BenignBnAsMulAdd", {"benign:bn-as-mul-add"}},
      {"BenignPadIntoConv", {"benign:conv-pads-to-pad-node", "benign:pad-into-conv"}},
      {"BenignConvPadsToPadNode", {"benign:conv-pads-to-pad-node"}},
      {"BenignWeightsAsConstants", {"benign:weights-as-constants"}},
      {"BenignNhwc", {"benign:nhwc"}},
      {"BenignOrtOptimized", {"benign:ort-optimized"}},
      {"BenignOpset", {"benign:opset=15"}},
  };
  return table;
}

onnx::ModelProto fixture(Fixture f) {
  switch (f) {
    case Fixture::kCnn: return testing::build_cnn();
    case Fixture::kHardSwishCnn:
      return testing::build_cnn(testing::cnn_options([](testing::CnnOptions& o) { o.hard_swish = true; }));
    case Fixture::kNormalisingCnn: return inject::testing::normalising_cnn(32);
  }
  return {};
}

inject::InjectionResult plant(const onnx::ModelProto& source, const Row& row) {
  return testing::plant_specs(source, row.specs, row.name);
}

// The Target nodes a finding may name for this row.
std::set<std::string> expected_nodes(const Row& row, const nlohmann::json& truth) {
  if (row.node != kTruth) return {row.node};
  return testing::truth_nodes(truth);
}

using testing::findings_of;
using testing::steps_of;

class FaultMatrix : public ::testing::TestWithParam<Row> {};

TEST_P(FaultMatrix, LocalizedRepairedAndReplayed) {
  const Row& row = GetParam();
  const onnx::ModelProto source = fixture(row.fixture);
  const inject::InjectionResult injected = plant(source, row);
  const onnx::ModelProto& target = injected.model;
  ASSERT_FALSE(injected.ground_truth.is_null());
  const auto preset = data::preset_by_name(row.preset).value();
  const compare::ModelSide source_side{&source, "source.onnx", preset}, target_side{&target, "target.onnx", preset};
  const auto photos = testing::synthetic_photos("fault_matrix_photos");
  const repair::RepairOptions options = testing::quiet_repair_options();

  auto loc = localize::localize_faults(source_side, target_side, photos, options.localize);
  ASSERT_TRUE(loc.ok()) << loc.error().message;
  auto r = repair::repair_target(source_side, target_side, photos, options);
  ASSERT_TRUE(r.ok()) << r.error().message;

  if (row.outcome == Outcome::kSameOutputs) {  // nothing to find that matters, nothing to repair
    EXPECT_EQ(loc->detection.summary.disagreeing, 0u) << findings_of(*loc);
    EXPECT_EQ(loc->fault_count(), 0u) << findings_of(*loc);
    EXPECT_EQ(r->initial_disagreeing, 0u);
    EXPECT_TRUE(std::none_of(r->steps.begin(), r->steps.end(), [](const auto& s) { return s.kept; })) << steps_of(*r);
    EXPECT_TRUE(r->patch.edits.empty());
    EXPECT_FALSE(r->patch.preprocess.has_value());
    return;
  }

  // Localized: a finding of the row's type at the planted node.
  const auto nodes = expected_nodes(row, injected.ground_truth);
  const bool found = std::any_of(loc->findings.begin(), loc->findings.end(), [&](const Finding& f) {
    // A fault no image shows (float16 weights, an extra output) is harmless on these samples.
    return f.type() == *row.type && nodes.count(f.target_node) > 0 && (f.is_fault() || loc->disagreeing == 0);
  });
  EXPECT_TRUE(found) << "no " << localize::fault_type_name(*row.type) << " fault at "
                     << nlohmann::json(nodes).dump() << ":\n" << findings_of(*loc);

  // Repaired: no image disagrees any more.
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);

  // The patch, as JSON and back, replays on the Target to the repaired model byte for byte.
  auto patch = repair::patch_from_json(repair::patch_to_json(r->patch));
  ASSERT_TRUE(patch.ok()) << patch.error().message;
  onnx::ModelProto replayed = target;
  auto st = repair::apply_patch(*patch, replayed);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(model::serialize_model(replayed), model::serialize_model(r->repaired));
  EXPECT_EQ(patch->preprocess.has_value(), r->patch.preprocess.has_value());
}

INSTANTIATE_TEST_SUITE_P(Rows, FaultMatrix, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) { return info.param.name; });

// Every fault inject supports has a row: a new fault is not done until the matrix runs it.
TEST(FaultMatrixTable, EverySupportedFaultHasARow) {
  std::set<std::string> covered;  // "type:fault" as supported_faults() writes them
  for (const auto& row : rows())
    for (const auto& text : row.specs) {
      auto spec = inject::parse_fault_spec(text);
      ASSERT_TRUE(spec.ok()) << text;
      std::string type(inject::injected_type_name(spec->type));
      std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
      covered.insert(type + ":" + spec->fault);
    }
  for (const auto& name : inject::supported_faults())
    EXPECT_TRUE(covered.count(name)) << name << " has no row in the fault matrix";
}

}  // namespace
}  // namespace fetafix
