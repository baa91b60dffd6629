#include <gtest/gtest.h>

#include <algorithm>

#include "fixtures.h"
#include "model/graph.h"

namespace fetafix::model {
namespace {

std::vector<std::string> names_of(const GraphView& v, const std::vector<size_t>& nodes) {
  std::vector<std::string> out;
  for (size_t i : nodes) out.push_back(v.node_name(i));
  return out;
}

size_t index_of(const GraphView& v, const std::string& name) {
  auto i = v.find_node(name);
  EXPECT_TRUE(i.has_value()) << name;
  return i.value_or(0);
}

std::string idom_name(const GraphView& v, const std::string& name) {
  int64_t d = v.immediate_dominator(index_of(v, name));
  if (d == kVirtualRoot) return "<inputs>";
  if (d == kNotReached) return "<not reached>";
  return v.node_name(static_cast<size_t>(d));
}

TEST(GraphView, ProducersConsumersAndNames) {
  auto m = fixtures::residual_model();
  auto view = GraphView::build(m.graph());
  ASSERT_TRUE(view.ok()) << view.error().message;
  const GraphView& v = *view;
  EXPECT_EQ(v.node_count(), 11u);
  EXPECT_EQ(v.node_name(9), "GlobalAveragePool_9");
  EXPECT_TRUE(v.node_name_synthesized(9));
  EXPECT_EQ(v.node_name(10), "Flatten_10");
  EXPECT_FALSE(v.node_name_synthesized(0));
  EXPECT_EQ(v.find_node("Flatten_10"), std::optional<size_t>(10));
  EXPECT_EQ(v.find_node("conv7"), std::nullopt);

  EXPECT_EQ(v.producer("r1"), std::optional<size_t>(1));
  EXPECT_EQ(v.producer("x"), std::nullopt);   // graph input
  EXPECT_EQ(v.producer("w1"), std::nullopt);  // initializer
  auto uses = v.consumers("r1");
  ASSERT_EQ(uses.size(), 2u);
  EXPECT_EQ(v.node_name(uses[0].node), "conv2");
  EXPECT_EQ(uses[0].input_index, 0);
  EXPECT_EQ(v.node_name(uses[1].node), "add");
  EXPECT_EQ(uses[1].input_index, 0);
  EXPECT_TRUE(v.consumers("unused_w").empty());
  EXPECT_TRUE(v.is_initializer("w1"));
  EXPECT_FALSE(v.is_initializer("w2"));  // a Constant output, not an initializer
  EXPECT_TRUE(v.is_graph_output("a"));
  EXPECT_EQ(v.node_predecessors(index_of(v, "add")), (std::vector<size_t>{1, 4}));
}

TEST(GraphView, RealInputsExcludeInitializers) {
  auto m = fixtures::residual_model();
  // Older exporters also list initializers as graph inputs (overridable defaults).
  *m.mutable_graph()->add_input() = m.graph().input(0);
  m.mutable_graph()->mutable_input(1)->set_name("b1");
  auto v = GraphView::build(m.graph());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->real_inputs(), std::vector<std::string>{"x"});
}

TEST(GraphView, DuplicateAndCollidingNamesAreDisambiguated) {
  GraphBuilder b;
  b.input("x", DType::kFloat32, {1});
  b.node("Relu", "Relu_1", {"x"}, {}, "a");   // a real name equal to what node 1 would get
  b.node("Relu", "", {"a"}, {}, "b");
  b.node("Relu", "Relu_1", {"b"}, {}, "c");   // duplicate of node 0's name
  b.output("c", DType::kFloat32, {1});
  auto m = b.build();
  auto names = name_nodes(m.graph());
  EXPECT_EQ(names.names, (std::vector<std::string>{"Relu_1", "Relu_1_1", "Relu_2"}));
  EXPECT_EQ(names.synthesized, (std::vector<bool>{false, true, true}));
  EXPECT_EQ(assign_node_names(*m.mutable_graph()), 2u);
  EXPECT_EQ(m.graph().node(1).name(), "Relu_1_1");
  EXPECT_EQ(name_nodes(m.graph()).names, names.names);
  EXPECT_EQ(assign_node_names(*m.mutable_graph()), 0u);
}

TEST(GraphView, TopologicalOrderOfAShuffledNodeList) {
  // A chain n0 -> n1 -> ... -> n7 plus three independent nodes reading x, shuffled.
  GraphBuilder b;
  b.input("x", DType::kFloat32, {1});
  std::string prev = "x";
  for (int i = 0; i < 8; ++i) prev = b.node("Relu", "n" + std::to_string(i), {prev}, {}, "v" + std::to_string(i));
  for (int i = 0; i < 3; ++i) b.node("Neg", "free" + std::to_string(i), {"x"});
  b.output(prev, DType::kFloat32, {1});
  auto m = b.build();
  auto* nodes = m.mutable_graph()->mutable_node();
  Rng rng(42);
  for (int i = nodes->size() - 1; i > 0; --i) nodes->SwapElements(i, static_cast<int>(rng.next_u64() % (i + 1)));

  auto v = GraphView::build(m.graph());
  ASSERT_TRUE(v.ok()) << v.error().message;
  const auto& order = v->topological_order();
  ASSERT_EQ(order.size(), 11u);
  std::vector<size_t> position(order.size());
  for (size_t k = 0; k < order.size(); ++k) position[order[k]] = k;
  for (size_t i = 0; i < order.size(); ++i)
    for (size_t p : v->node_predecessors(i)) EXPECT_LT(position[p], position[i]);
  // Stable: the chain in order, and the first ready node by file position always goes first.
  std::vector<std::string> chain;
  for (size_t i : order)
    if (v->node_name(i)[0] == 'n') chain.push_back(v->node_name(i));
  EXPECT_EQ(chain, (std::vector<std::string>{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"}));
  std::vector<size_t> expected;  // recompute with a naive stable Kahn
  std::vector<bool> done(order.size(), false);
  while (expected.size() < order.size()) {
    for (size_t i = 0; i < order.size(); ++i) {
      if (done[i]) continue;
      auto preds = v->node_predecessors(i);
      if (std::all_of(preds.begin(), preds.end(), [&](size_t p) { return done[p]; })) {
        done[i] = true;
        expected.push_back(i);
        break;
      }
    }
  }
  EXPECT_EQ(order, expected);
  // Deterministic: the same input gives the same order.
  EXPECT_EQ(GraphView::build(m.graph())->topological_order(), order);
}

TEST(GraphView, CycleIsAnError) {
  GraphBuilder b("cyclic");
  b.input("x", DType::kFloat32, {1});
  b.node("Add", "p", {"x", "q_out"});
  b.node("Relu", "q", {"p_out"});
  b.output("q_out", DType::kFloat32, {1});
  auto v = GraphView::build(b.build().graph());
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("cycle"), std::string::npos) << v.error().message;
  EXPECT_NE(v.error().message.find("'p'"), std::string::npos) << v.error().message;
}

TEST(GraphView, DominatorsOnAResidualGraph) {
  auto m = fixtures::residual_model();
  auto view = GraphView::build(m.graph());
  ASSERT_TRUE(view.ok());
  const GraphView& v = *view;
  EXPECT_EQ(idom_name(v, "conv1"), "<inputs>");
  EXPECT_EQ(idom_name(v, "relu1"), "conv1");
  EXPECT_EQ(idom_name(v, "conv2"), "relu1");  // not hidden by its Constant weight
  EXPECT_EQ(idom_name(v, "relu2"), "conv2");
  EXPECT_EQ(idom_name(v, "probe"), "relu2");
  EXPECT_EQ(idom_name(v, "add"), "relu1");    // the residual join
  EXPECT_EQ(idom_name(v, "mul"), "add");
  EXPECT_EQ(idom_name(v, "Flatten_10"), "GlobalAveragePool_9");
  EXPECT_EQ(idom_name(v, "w2_const"), "<not reached>");
  EXPECT_EQ(idom_name(v, "scale_const"), "<not reached>");
  EXPECT_FALSE(v.reached_from_inputs(index_of(v, "w2_const")));

  EXPECT_EQ(names_of(v, v.region_to_dominator(index_of(v, "add"))),
            (std::vector<std::string>{"relu1", "conv2", "relu2", "add"}));
  EXPECT_EQ(names_of(v, v.region_to_dominator(index_of(v, "relu1"))), (std::vector<std::string>{"conv1", "relu1"}));
  EXPECT_EQ(names_of(v, v.region_to_dominator(index_of(v, "conv1"))), (std::vector<std::string>{"conv1"}));
  EXPECT_TRUE(v.region_to_dominator(index_of(v, "w2_const")).empty());
  EXPECT_EQ(names_of(v, v.nodes_between(index_of(v, "conv1"), index_of(v, "mul"))),
            (std::vector<std::string>{"conv1", "relu1", "conv2", "relu2", "add", "mul"}));
  EXPECT_TRUE(v.nodes_between(index_of(v, "probe"), index_of(v, "add")).empty());
}

TEST(GraphView, DominatorsOnADiamondWithTwoInputs) {
  //   x -> a -> b --+
  //          \-> c -+-> d ;  y -> e ; (d, e) -> f
  GraphBuilder b;
  b.input("x", DType::kFloat32, {1});
  b.input("y", DType::kFloat32, {1});
  b.node("Relu", "a", {"x"});
  b.node("Neg", "b", {"a_out"});
  b.node("Abs", "c", {"a_out"});
  b.node("Add", "d", {"b_out", "c_out"});
  b.node("Relu", "e", {"y"});
  b.node("Add", "f", {"d_out", "e_out"});
  b.output("f_out", DType::kFloat32, {1});
  auto m = b.build();
  auto view = GraphView::build(m.graph());
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(idom_name(*view, "a"), "<inputs>");
  EXPECT_EQ(idom_name(*view, "b"), "a");
  EXPECT_EQ(idom_name(*view, "c"), "a");
  EXPECT_EQ(idom_name(*view, "d"), "a");
  EXPECT_EQ(idom_name(*view, "e"), "<inputs>");
  EXPECT_EQ(idom_name(*view, "f"), "<inputs>");  // reachable from x and from y
  EXPECT_EQ(names_of(*view, view->region_to_dominator(index_of(*view, "d"))),
            (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(names_of(*view, view->region_to_dominator(index_of(*view, "f"))),
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
}

TEST(GraphView, WeightOnlyChainsAreNotReached) {
  // A QDQ weight branch: DequantizeLinear(int8 weight) feeding a Conv.
  GraphBuilder b;
  b.input("x", DType::kFloat32, {1, 1, 4, 4});
  Tensor q(DType::kInt8, {1, 1, 1, 1});
  b.initializer("wq", q);
  b.initializer("ws", float_tensor({}, {0.1f}));
  b.node("DequantizeLinear", "deq", {"wq", "ws"}, {}, "w");
  b.node("Relu", "pre", {"x"});
  b.node("Conv", "conv", {"pre_out", "w"});
  b.output("conv_out", DType::kFloat32, {1, 1, 4, 4});
  auto m = b.build();
  auto v = GraphView::build(m.graph());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(idom_name(*v, "deq"), "<not reached>");
  EXPECT_EQ(idom_name(*v, "conv"), "pre");
}

TEST(GraphView, SubgraphReadsAreImplicitUses) {
  // An If whose then-branch reads outer value "r" (produced after the If in the file).
  GraphBuilder b;
  b.input("x", DType::kFloat32, {1});
  b.input("cond", DType::kBool, {});
  onnx::GraphProto then_branch, else_branch;
  then_branch.set_name("then");
  auto* tn = then_branch.add_node();
  tn->set_op_type("Identity");
  tn->add_input("r");
  tn->add_output("t_out");
  then_branch.add_output()->set_name("t_out");
  else_branch.set_name("else");
  auto* en = else_branch.add_node();
  en->set_op_type("Identity");
  en->add_input("x");
  en->add_output("e_out");
  else_branch.add_output()->set_name("e_out");
  Attr then_attr, else_attr;
  then_attr.proto.set_name("then_branch");
  then_attr.proto.set_type(onnx::AttributeProto::GRAPH);
  *then_attr.proto.mutable_g() = then_branch;
  else_attr.proto.set_name("else_branch");
  else_attr.proto.set_type(onnx::AttributeProto::GRAPH);
  *else_attr.proto.mutable_g() = else_branch;
  b.node("If", "if", {"cond"}, {then_attr, else_attr}, "out");
  b.node("Relu", "producer", {"x"}, {}, "r");
  b.output("out", DType::kFloat32, {1});
  auto m = b.build();

  EXPECT_EQ(implicit_inputs(m.graph().node(0)), (std::vector<std::string>{"r", "x"}));
  auto v = GraphView::build(m.graph());
  ASSERT_TRUE(v.ok()) << v.error().message;
  auto uses = v->consumers("r");
  ASSERT_EQ(uses.size(), 1u);
  EXPECT_EQ(uses[0].node, 0u);
  EXPECT_EQ(uses[0].input_index, -1);
  EXPECT_EQ(v->topological_order(), (std::vector<size_t>{1, 0}));
  EXPECT_EQ(idom_name(*v, "if"), "<inputs>");
}

TEST(GraphView, DeclaredAndObservedShapes) {
  auto m = fixtures::residual_model();
  auto view = GraphView::build(m.graph());
  ASSERT_TRUE(view.ok());
  GraphView& v = *view;
  EXPECT_EQ(v.shape("x"), (std::vector<int64_t>{1, 3, 8, 8}));
  EXPECT_EQ(v.shape("w1"), (std::vector<int64_t>{4, 3, 3, 3}));
  EXPECT_EQ(v.shape("w2"), (std::vector<int64_t>{4, 4, 3, 3}));  // a Constant's tensor
  EXPECT_EQ(v.shape("scale"), std::vector<int64_t>{});            // value_float: a scalar
  EXPECT_EQ(v.shape("y"), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(v.shape("r1"), std::nullopt);
  EXPECT_EQ(v.dtype("x"), DType::kFloat32);
  EXPECT_EQ(v.dtype("r1"), DType::kUndefined);

  v.merge_observed_shapes({{"r1", {1, 4, 8, 8}}, {"y", {2, 4}}});
  EXPECT_EQ(v.shape("r1"), (std::vector<int64_t>{1, 4, 8, 8}));
  EXPECT_EQ(v.shape("y"), (std::vector<int64_t>{2, 4}));  // observed wins over declared

  GraphBuilder dyn;
  dyn.input("x", DType::kFloat32, {-1, 3});
  dyn.node("Relu", "r", {"x"}, {}, "y");
  auto dm = dyn.build();
  auto dv = GraphView::build(dm.graph());
  EXPECT_EQ(dv->shape("x"), (std::vector<int64_t>{-1, 3}));
}

}  // namespace
}  // namespace fetafix::model
