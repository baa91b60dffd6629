// cleanup_model and check_model: what a repaired model sheds, and that it then loads quietly.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "model/cleanup.h"
#include "model/edit.h"
#include "model/model.h"
#include "runtime/session.h"
#include "support/ort_messages.h"
#include "support/ports.h"

namespace fetafix::model {
namespace {

// residual_model plus what repairs leave behind: a weight chain nobody reads (Constant ->
// DequantizeLinear), a dead Constant, value_info for a value that is gone and one repeated.
onnx::ModelProto littered_model() {
  onnx::ModelProto m = fixtures::residual_model();
  GraphBuilder b("extra", 13);
  b.constant("stale_q", Tensor(DType::kInt8, {2}));
  b.constant("stale_scale", float_tensor({}, {0.5f}));
  b.node("DequantizeLinear", "stale_dq", {"stale_q", "stale_scale"}, {}, "stale_w");
  b.constant("dead_const", float_tensor({1}, {3.0f}));
  for (const auto& n : b.graph().node()) *m.mutable_graph()->add_node() = n;
  auto* g = m.mutable_graph();
  for (const char* name : {"gone", "r1", "r1"}) {
    auto* vi = g->add_value_info();
    vi->set_name(name);
    vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  return m;
}

Tensor run_first_output(const onnx::ModelProto& m) {
  auto session = runtime::Session::create(m, {});
  EXPECT_TRUE(session.ok()) << session.error().message;
  auto out = (*session)->run({random_tensor({1, 3, 8, 8}, 7)});
  EXPECT_TRUE(out.ok()) << out.error().message;
  return (*out)[0];
}

TEST(Cleanup, RemovesUnusedWeightsDeadNodesAndStaleValueInfo) {
  onnx::ModelProto m = littered_model();
  const Tensor before = run_first_output(m);
  const CleanupReport r = cleanup_model(m);
  EXPECT_EQ(r.initializers_removed, std::vector<std::string>{"unused_w"});
  // The unused Sigmoid "probe" is dead code too; the Constants go with the DequantizeLinear.
  EXPECT_EQ(r.nodes_removed, (std::vector<std::string>{"probe", "stale_q_const", "stale_scale_const", "stale_dq",
                                                       "dead_const_const"}));
  EXPECT_EQ(r.value_info_removed, (std::vector<std::string>{"gone", "r1"}));
  EXPECT_EQ(m.graph().value_info_size(), 1);
  EXPECT_EQ(run_first_output(m).bytes, before.bytes);
  // Idempotent and deterministic.
  const std::string once = serialize_model(m);
  EXPECT_EQ(cleanup_model(m).removed(), 0u);
  EXPECT_EQ(serialize_model(m), once);
  onnx::ModelProto again = littered_model();
  cleanup_model(again);
  EXPECT_EQ(serialize_model(again), once);
}

TEST(Cleanup, KeepsGraphInputsOutputsAndForeignDomainNodes) {
  GraphBuilder b("io", 9);
  b.input("x", DType::kFloat32, {1, 4});
  b.input("unused_input", DType::kFloat32, {1, 4});
  b.initializer("w_as_input", float_tensor({4}, {1, 2, 3, 4}));
  b.node("Relu", "relu", {"x"}, {}, "y");
  b.node("Custom", "side_effect", {"x"}, {}, "custom_out");
  b.output("y", DType::kFloat32, {1, 4});
  onnx::ModelProto m = b.build();
  m.mutable_graph()->mutable_node(1)->set_domain("com.example");
  onnx::ValueInfoProto listed = m.graph().input(0);  // IR < 4 style: the initializer listed as an input
  listed.set_name("w_as_input");
  *m.mutable_graph()->add_input() = listed;
  const CleanupReport r = cleanup_model(m);
  EXPECT_EQ(r.initializers_removed, std::vector<std::string>{"w_as_input"});
  EXPECT_TRUE(r.nodes_removed.empty());
  ASSERT_EQ(m.graph().input_size(), 2);
  EXPECT_EQ(m.graph().input(1).name(), "unused_input");
}

TEST(Cleanup, RepairedModelLoadsInOnnxRuntimeWithoutWarnings) {
  onnx::ModelProto m = fixtures::residual_model();
  // A WB-style repair: conv1 pointed at a new weight, the old one left behind.
  EditLog log(m);
  ASSERT_TRUE(log.apply(Edit::add_initializer("w1_fixed", random_tensor({4, 3, 3, 3}, 9, 0.2f))).ok());
  ASSERT_TRUE(log.apply(Edit::set_node_input("conv1", 1, "w1_fixed")).ok());
  const std::string noisy = testing::ort_load_messages(m);
  EXPECT_NE(noisy.find("w1"), std::string::npos) << "ONNX Runtime no longer warns about unused initializers: " << noisy;
  cleanup_model(m);
  EXPECT_EQ(testing::ort_load_messages(m), "");
  EXPECT_TRUE(check_model(m).ok()) << check_model(m).error().message;
}

// Real converter output: every model of the port corpus (torch.onnx exports, the dequantized
// TFLite MobileNetV2, paddle2onnx's PaddleOCR) passes the check and loads without a warning once
// cleaned. Skips when the corpus has not been made.
TEST(Cleanup, PortCorpusModelsLoadWithoutWarnings) {
  FETAFIX_REQUIRE_PORT_CASE(any, "mobilenetv2-port");
  size_t models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::ports_dir())) {
    for (const char* file : {"source.onnx", "target.onnx"}) {
      if (!std::filesystem::exists(entry.path() / file)) continue;
      SCOPED_TRACE((entry.path() / file).string());
      auto m = load_model(entry.path() / file);
      ASSERT_TRUE(m.ok()) << m.error().message;
      cleanup_model(m->proto);
      EXPECT_TRUE(check_model(m->proto).ok()) << check_model(m->proto).error().message;
      EXPECT_EQ(testing::ort_load_messages(m->proto), "");
      ++models;
    }
  }
  EXPECT_GE(models, 2u);
}

TEST(CheckModel, FullCheckUpToOpset17AndStructureAbove) {
  onnx::ModelProto m = fixtures::residual_model();
  auto full = check_model(m);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_TRUE(full->full_check);

  m.mutable_opset_import(0)->set_version(18);
  auto structural = check_model(m);
  ASSERT_TRUE(structural.ok()) << structural.error().message;
  EXPECT_FALSE(structural->full_check);
  m.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
  auto broken = check_model(m);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("'relu1' reads 'nowhere'"), std::string::npos) << broken.error().message;

  onnx::ModelProto twice = fixtures::residual_model();
  twice.mutable_graph()->mutable_node(1)->set_output(0, "c1");  // c1 defined by conv1 already
  auto rejected = check_model(twice);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.error().message.find("ONNX checker"), std::string::npos) << rejected.error().message;
}

}  // namespace
}  // namespace fetafix::model
