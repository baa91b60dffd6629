#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <set>

#include "fixtures.h"
#include "model/attributes.h"
#include "model/edit.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/weights.h"

namespace fetafix::model {
namespace {

using json = nlohmann::json;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

onnx::ValueInfoProto float_value_info(const std::string& name, std::vector<int64_t> dims) {
  onnx::ValueInfoProto vi;
  vi.set_name(name);
  auto* tt = vi.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (auto d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  return vi;
}

onnx::AttributeProto ints_attribute(const std::string& name, std::vector<int64_t> v) { return Attr::ints(name, v).proto; }

struct EditCase {
  std::string label;
  std::function<Edit(const onnx::ModelProto&)> make;
  std::function<void(const onnx::ModelProto&)> check;  // that the edit did what it says
};

std::vector<EditCase> one_edit_per_kind() {
  std::vector<EditCase> cases;
  cases.push_back({"set_weight initializer", [](auto&) { return Edit::set_weight("w1", random_tensor({4, 3, 3, 3}, 99)); },
                   [](const auto& m) { EXPECT_EQ(get_weight(m, "w1")->bytes, random_tensor({4, 3, 3, 3}, 99).bytes); }});
  cases.push_back({"set_weight constant", [](auto&) { return Edit::set_weight("w2", random_tensor({4, 4, 3, 3}, 98)); },
                   [](const auto& m) {
                     EXPECT_EQ(get_weight(m, "w2")->bytes, random_tensor({4, 4, 3, 3}, 98).bytes);
                     EXPECT_EQ(m.graph().node(2).op_type(), "Constant");
                   }});
  cases.push_back({"set_weight value_float constant", [](auto&) { return Edit::set_weight("scale", float_tensor({}, {2.f})); },
                   [](const auto& m) { EXPECT_EQ(m.graph().node(7).attribute(0).f(), 2.f); }});
  cases.push_back({"set_attribute replace", [](auto&) { return Edit::set_attribute("conv1", ints_attribute("pads", {0, 0, 0, 0})); },
                   [](const auto& m) {
                     EXPECT_EQ(*get_ints(m.graph().node(0), "pads"), (std::vector<int64_t>{0, 0, 0, 0}));
                     EXPECT_EQ(m.graph().node(0).attribute(0).name(), "pads");
                   }});
  cases.push_back({"set_attribute append on a synthesized name",
                   [](auto&) { return Edit::set_attribute("Flatten_10", Attr::i("axis", 1).proto); },
                   [](const auto& m) { EXPECT_EQ(*get_int(m.graph().node(10), "axis"), 1); }});
  cases.push_back({"set_attribute float", [](auto&) { return Edit::set_attribute("relu1", Attr::f("alpha", 0.1f).proto); },
                   [](const auto& m) { EXPECT_EQ(*get_float(m.graph().node(1), "alpha"), 0.1f); }});
  cases.push_back({"remove_attribute", [](auto&) { return Edit::remove_attribute("conv1", "pads"); },
                   [](const auto& m) { EXPECT_EQ(find_attribute(m.graph().node(0), "pads"), nullptr); }});
  cases.push_back({"insert_node",
                   [](auto&) {
                     onnx::NodeProto n;
                     n.set_name("id_new");
                     n.set_op_type("Identity");
                     n.add_input("r1");
                     n.add_output("r1_id");
                     n.set_doc_string("inserted by a test");
                     return Edit::insert_node(n, 2);
                   },
                   [](const auto& m) {
                     EXPECT_EQ(m.graph().node(2).name(), "id_new");
                     EXPECT_EQ(m.graph().node(3).name(), "w2_const");
                   }});
  cases.push_back({"insert_node at end",
                   [](auto&) {
                     onnx::NodeProto n;
                     n.set_name("tail");
                     n.set_op_type("LeakyRelu");
                     n.add_input("y");
                     n.add_output("y2");
                     *n.add_attribute() = Attr::f("alpha", 0.3f).proto;
                     return Edit::insert_node(n);
                   },
                   [](const auto& m) { EXPECT_EQ(m.graph().node(11).name(), "tail"); }});
  cases.push_back({"remove_node", [](auto&) { return Edit::remove_node("probe"); },
                   [](const auto& m) {
                     EXPECT_EQ(m.graph().node_size(), 10);
                     EXPECT_FALSE(find_node(m.graph(), "probe").has_value());
                   }});
  cases.push_back({"set_node_input", [](auto&) { return Edit::set_node_input("add", 1, "c2"); },
                   [](const auto& m) { EXPECT_EQ(m.graph().node(6).input(1), "c2"); }});
  cases.push_back({"set_node_input append", [](auto&) { return Edit::set_node_input("conv2", 2, "b1"); },
                   [](const auto& m) { EXPECT_EQ(m.graph().node(3).input(2), "b1"); }});
  cases.push_back({"set_graph_input", [](const auto& m) { return set_graph_input_shape(m, "x", {2, 3, 8, 8}).value(); },
                   [](const auto& m) { EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_value(), 2); }});
  cases.push_back({"remove_graph_output", [](auto&) { return Edit::remove_graph_output("y"); },
                   [](const auto& m) {
                     ASSERT_EQ(m.graph().output_size(), 1);
                     EXPECT_EQ(m.graph().output(0).name(), "a");
                   }});
  cases.push_back({"add_graph_output", [](auto&) { return Edit::add_graph_output(float_value_info("r1", {1, 4, 8, 8}), 0); },
                   [](const auto& m) {
                     EXPECT_EQ(m.graph().output(0).name(), "r1");
                     EXPECT_EQ(m.graph().output_size(), 3);
                   }});
  cases.push_back({"add_initializer", [](auto&) { return Edit::add_initializer("extra", int64_tensor({3}, {1, 2, 3})); },
                   [](const auto& m) { EXPECT_EQ(get_weight(m, "extra")->to_float(), (std::vector<float>{1, 2, 3})); }});
  cases.push_back({"remove_initializer", [](auto&) { return Edit::remove_initializer("unused_w"); },
                   [](const auto& m) { EXPECT_FALSE(is_weight(m, "unused_w")); }});
  return cases;
}

TEST(Edits, EveryKindAppliesUndoesAndReplaysByteIdentically) {
  std::set<EditKind> kinds_seen;
  for (const auto& c : one_edit_per_kind()) {
    SCOPED_TRACE(c.label);
    auto model = fixtures::residual_model();
    const std::string original = serialize_model(model);
    const Edit edit = c.make(model);
    kinds_seen.insert(edit.kind);

    EditLog log(model);
    Status s = log.apply(edit);
    ASSERT_TRUE(s.ok()) << s.error().message;
    const std::string edited = serialize_model(model);
    EXPECT_NE(edited, original);
    c.check(model);
    EXPECT_TRUE(GraphView::build(model.graph()).ok());

    // Through text, as it would travel in a file.
    const std::string text = log.to_json().dump(2);
    auto fresh = fixtures::residual_model();
    Status r = replay(json::parse(text), fresh);
    ASSERT_TRUE(r.ok()) << r.error().message << "\n" << text;
    EXPECT_EQ(serialize_model(fresh), edited) << text;
    EXPECT_EQ(edits_to_json(*edits_from_json(json::parse(text))).dump(), log.to_json().dump());

    ASSERT_TRUE(log.undo_last());
    EXPECT_EQ(serialize_model(model), original);
    EXPECT_EQ(log.size(), 0u);
    EXPECT_FALSE(log.undo_last());
  }
  EXPECT_EQ(kinds_seen.size(), 11u);  // all edit kinds covered
}

TEST(Edits, ASequenceOfEditsReplaysAndUndoesAsAWhole) {
  auto model = fixtures::residual_model();
  const std::string original = serialize_model(model);
  EditLog log(model);
  std::vector<std::string> after_each{original};
  for (const auto& c : one_edit_per_kind()) {
    // Some cases conflict with earlier ones (e.g. replace then remove "pads"); keep what applies.
    if (log.apply(c.make(model)).ok()) after_each.push_back(serialize_model(model));
  }
  ASSERT_GE(log.size(), 14u);
  const std::string edited = serialize_model(model);

  auto fresh = fixtures::residual_model();
  ASSERT_TRUE(replay(json::parse(log.to_json().dump()), fresh).ok());
  EXPECT_EQ(serialize_model(fresh), edited);

  // Undo steps back through every intermediate state exactly.
  for (size_t k = after_each.size() - 1; k > 0; --k) {
    ASSERT_TRUE(log.undo_last());
    EXPECT_EQ(serialize_model(model), after_each[k - 1]) << "after undoing edit " << k;
  }
  ASSERT_TRUE(log.apply(Edit::remove_node("probe")).ok());
  log.undo_all();
  EXPECT_EQ(serialize_model(model), original);
}

TEST(Edits, EditsOnUnnamedNodesResolveTheSameWayOnReplay) {
  // Inserting before an unnamed node shifts its synthesized name; replay sees the same shift.
  auto model = fixtures::residual_model();
  EditLog log(model);
  onnx::NodeProto n;
  n.set_name("early");
  n.set_op_type("Identity");
  n.add_input("x");
  n.add_output("x_copy");
  ASSERT_TRUE(log.apply(Edit::insert_node(n, 0)).ok());
  ASSERT_TRUE(log.apply(Edit::set_attribute("Flatten_11", Attr::i("axis", 1).proto)).ok());
  EXPECT_FALSE(log.apply(Edit::set_attribute("Flatten_10", Attr::i("axis", 1).proto)).ok());
  auto fresh = fixtures::residual_model();
  ASSERT_TRUE(replay(log.to_json(), fresh).ok());
  EXPECT_EQ(serialize_model(fresh), serialize_model(model));
}

struct FailCase {
  Edit edit;
  std::string message;  // the whole error
};

TEST(Edits, FailedEditsLeaveTheModelUnchangedAndSayWhy) {
  onnx::NodeProto dup;
  dup.set_name("relu1");
  dup.set_op_type("Relu");
  dup.add_input("x");
  dup.add_output("fresh");
  onnx::NodeProto late_input;
  late_input.set_name("early_user");
  late_input.set_op_type("Relu");
  late_input.add_input("r2");
  late_input.add_output("fresh2");
  onnx::NodeProto clash;
  clash.set_name("clash");
  clash.set_op_type("Relu");
  clash.add_input("x");
  clash.add_output("r1");
  onnx::AttributeProto untyped;
  untyped.set_name("k");
  Tensor short_tensor(DType::kFloat32, {4});
  short_tensor.bytes.resize(2);

  const std::vector<FailCase> cases = {
      {Edit::set_weight("r1", float_tensor({1}, {1.f})),
       "set_weight: no weight named 'r1' (neither an initializer nor a Constant output)"},
      {Edit::set_weight("w1", short_tensor), "set_weight: new value of 'w1': 2 bytes for float32[4] (expected 16)"},
      {Edit::set_attribute("conv7", Attr::i("group", 1).proto), "set_attribute: no node named 'conv7'"},
      {Edit::set_attribute("conv1", untyped), "set_attribute: node 'conv1': the new attribute 'k' has no type"},
      {Edit::remove_attribute("conv1", "dilations"), "remove_attribute: node 'conv1' has no attribute 'dilations'"},
      {Edit::remove_attribute("conv7", "pads"), "remove_attribute: no node named 'conv7'"},
      {Edit::insert_node(dup, 0), "insert_node: a node named 'relu1' already exists"},
      {Edit::insert_node(late_input, 1), "insert_node: node 'early_user': input 'r2' is not produced before position 1"},
      {Edit::insert_node(clash, 0), "insert_node: node 'clash': output 'r1' is already defined"},
      {Edit::insert_node(clash, 99), "insert_node: node 'clash': position 99 is outside 0..11"},
      {Edit::remove_node("relu1"), "remove_node: node 'relu1': its output 'r1' is still used by node 'conv2'"},
      {Edit::remove_node("Flatten_10"), "remove_node: node 'Flatten_10': its output 'y' is still used by the graph output 'y'"},
      {Edit::remove_node("nobody"), "remove_node: no node named 'nobody'"},
      {Edit::set_node_input("conv1", 0, "r2"), "set_node_input: node 'conv1': value 'r2' is not produced before the node"},
      {Edit::set_node_input("conv1", 4, "x"), "set_node_input: node 'conv1': input index 4 is outside 0..3"},
      {Edit::set_graph_input(float_value_info("z", {1})), "set_graph_input: no graph input named 'z'"},
      {Edit::remove_graph_output("r1"), "remove_graph_output: no graph output named 'r1'"},
      {Edit::add_graph_output(float_value_info("y", {1})), "add_graph_output: 'y' is already a graph output"},
      {Edit::add_graph_output(float_value_info("ghost", {1})), "add_graph_output: no value named 'ghost' in the graph"},
      {Edit::add_initializer("w1", float_tensor({1}, {1.f})), "add_initializer: an initializer named 'w1' already exists"},
      {Edit::add_initializer("r1", float_tensor({1}, {1.f})), "add_initializer: 'r1' is already produced by a node"},
      {Edit::remove_initializer("w1"), "remove_initializer: 'w1' is still used by node 'conv1'"},
      {Edit::remove_initializer("w2"), "remove_initializer: no initializer named 'w2'"},
  };
  auto model = fixtures::residual_model();
  const std::string original = serialize_model(model);
  EditLog log(model);
  for (const auto& c : cases) {
    Status s = log.apply(c.edit);
    ASSERT_FALSE(s.ok()) << describe(c.edit);
    EXPECT_EQ(s.error().message, c.message);
    EXPECT_EQ(serialize_model(model), original) << describe(c.edit);
    EXPECT_EQ(log.size(), 0u);
  }
  // Removing the last output is refused too.
  ASSERT_TRUE(log.apply(Edit::remove_graph_output("a")).ok());
  Status last = log.apply(Edit::remove_graph_output("y"));
  EXPECT_EQ(last.error().message, "remove_graph_output: 'y' is the only graph output");
}

TEST(Edits, ApplyAllAndReplayAreAllOrNothing) {
  auto model = fixtures::residual_model();
  const std::string original = serialize_model(model);
  EditLog log(model);
  Status s = log.apply_all({Edit::set_weight("w1", random_tensor({4, 3, 3, 3}, 5)), Edit::remove_node("probe"),
                            Edit::remove_attribute("probe", "x")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "edit #2: remove_attribute: no node named 'probe'");
  EXPECT_EQ(serialize_model(model), original);
  EXPECT_EQ(log.size(), 0u);

  json bad = edits_to_json({Edit::remove_node("probe"), Edit::remove_node("probe")});
  Status r = replay(bad, model);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "edit #1: remove_node: no node named 'probe'");
  EXPECT_EQ(serialize_model(model), original);
}

TEST(Edits, MalformedJsonIsRejectedWithTheEditNamed) {
  auto wrap = [](json e) { return json{{"format", "fetafix-edits"}, {"version", 1}, {"edits", json::array({e})}}; };
  struct Case { json j; std::string expected; };
  const std::vector<Case> cases = {
      {json::object(), "not a fetafix edit list"},
      {json{{"format", "fetafix-edits"}, {"version", 2}, {"edits", json::array()}}, "unsupported version"},
      {wrap({{"kind", "explode"}}), "edit #0: unknown edit kind 'explode'"},
      {wrap({{"kind", "remove_node"}}), "edit #0: remove_node: needs a string 'node'"},
      {wrap({{"kind", "remove_node"}, {"node", "a"}, {"nod", "b"}}), "edit #0: remove_node: unknown key 'nod'"},
      {wrap({{"kind", "set_node_input"}, {"node", "a"}, {"index", "1"}, {"value", "x"}}),
       "edit #0: set_node_input: 'index' must be an integer"},
      {wrap({{"kind", "set_weight"}, {"value", "w"}, {"tensor", {{"dtype", "float33"}, {"dims", {1}}, {"raw_base64", "AAAAAA=="}}}}),
       "edit #0: set_weight: 'tensor': unknown dtype 'float33'"},
      {wrap({{"kind", "set_weight"}, {"value", "w"}, {"tensor", {{"dtype", "float32"}, {"dims", {1}}, {"raw_base64", "AA*A"}}}}),
       "edit #0: set_weight: 'tensor': invalid base64 character at offset 2"},
      {wrap({{"kind", "set_weight"}, {"value", "w"}, {"tensor", {{"dtype", "float32"}, {"dims", {2}}, {"raw_base64", "AAAAAA=="}}}}),
       "edit #0: set_weight: 'tensor': 4 bytes for float32[2] (expected 8)"},
      {wrap({{"kind", "insert_node"}, {"proto", {{"op_typo", "Relu"}}}}), "edit #0: insert_node: 'proto' is not a valid NodeProto"},
  };
  for (const auto& c : cases) {
    auto r = edits_from_json(c.j);
    ASSERT_FALSE(r.ok()) << c.j.dump();
    EXPECT_TRUE(contains(r.error().message, c.expected)) << r.error().message;
  }
}

TEST(Edits, TensorBytesOfEveryLengthSurviveJson) {
  for (int n = 0; n < 7; ++n) {
    Tensor t(DType::kUInt8, {n});
    for (int i = 0; i < n; ++i) t.bytes[i] = static_cast<std::byte>(250 - 37 * i);
    auto back = edit_from_json(edit_to_json(Edit::add_initializer("t", t)));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->tensor.bytes, t.bytes);
    EXPECT_EQ(back->tensor.shape, t.shape);
  }
}

TEST(Edits, JsonLooksLikeTheDocumentedSchema) {
  json j = edit_to_json(Edit::set_node_input("add", 1, "c2"));
  EXPECT_EQ(j, (json{{"kind", "set_node_input"}, {"node", "add"}, {"index", 1}, {"value", "c2"}}));
  json w = edit_to_json(Edit::set_weight("b", float_tensor({1}, {1.f})));
  EXPECT_EQ(w["tensor"], (json{{"dtype", "float32"}, {"dims", {1}}, {"raw_base64", "AACAPw=="}}));
  json a = edit_to_json(Edit::set_attribute("conv1", Attr::i("group", 2).proto));
  EXPECT_EQ(a["attribute"], (json{{"name", "group"}, {"i", "2"}, {"type", "INT"}}));
  EXPECT_EQ(describe(Edit::set_weight("b", float_tensor({1}, {1.f}))), "set_weight 'b' float32[1]");
}

}  // namespace
}  // namespace fetafix::model

namespace fetafix::model {
namespace {

// Every edit example in docs/edits.md parses, so the documentation cannot drift from the code.
TEST(Edits, DocumentedExamplesParse) {
  std::ifstream in(std::string(FETAFIX_SOURCE_DIR) + "/docs/edits.md");
  ASSERT_TRUE(in.good());
  std::string line, block;
  bool in_block = false;
  std::vector<json> examples;
  while (std::getline(in, line)) {
    if (line == "```json") { in_block = true; block.clear(); continue; }
    if (in_block && line == "```") {
      in_block = false;
      // A block is one object, or one object per line.
      if (json::accept(block)) examples.push_back(json::parse(block));
      else {
        std::istringstream lines(block);
        for (std::string l; std::getline(lines, l);) {
          ASSERT_TRUE(json::accept(l)) << l;
          examples.push_back(json::parse(l));
        }
      }
      continue;
    }
    if (in_block) block += line + "\n";
  }
  std::set<std::string> kinds;
  for (const auto& e : examples) {
    if (!e.contains("kind")) continue;
    auto parsed = edit_from_json(e);
    EXPECT_TRUE(parsed.ok()) << e.dump() << ": " << parsed.error().message;
    kinds.insert(e["kind"].get<std::string>());
  }
  EXPECT_EQ(kinds.size(), 11u);
}

}  // namespace
}  // namespace fetafix::model
