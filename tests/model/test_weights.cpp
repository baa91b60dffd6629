#include <gtest/gtest.h>

#include <cstring>

#include "fixtures.h"
#include "model/attributes.h"
#include "model/model.h"
#include "model/weights.h"

namespace fetafix::model {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The same weight stored both ways, consumed by a Mul each.
onnx::ModelProto both_storages(const Tensor& w) {
  GraphBuilder b;
  b.input("x", DType::kFloat32, w.shape);
  b.initializer("w_init", w);
  b.constant("w_const", w);
  b.node("Mul", "m1", {"x", "w_init"});
  b.node("Mul", "m2", {"m1_out", "w_const"});
  b.output("m2_out", DType::kFloat32, w.shape);
  return b.build();
}

TEST(Weights, InitializerAndConstantReadAndWriteAlike) {
  const Tensor w = random_tensor({2, 3}, 11);
  auto m = both_storages(w);
  auto a = get_weight(m, "w_init"), c = get_weight(m, "w_const");
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_EQ(a->dtype, c->dtype);
  EXPECT_EQ(a->shape, c->shape);
  EXPECT_EQ(a->bytes, c->bytes);
  EXPECT_EQ(a->bytes, w.bytes);

  const Tensor w2 = random_tensor({2, 3}, 12);
  ASSERT_TRUE(set_weight(m, "w_init", w2).ok());
  ASSERT_TRUE(set_weight(m, "w_const", w2).ok());
  EXPECT_EQ(get_weight(m, "w_init")->bytes, w2.bytes);
  EXPECT_EQ(get_weight(m, "w_const")->bytes, w2.bytes);
  // Still stored where they were.
  EXPECT_EQ(m.graph().initializer_size(), 1);
  EXPECT_EQ(m.graph().initializer(0).name(), "w_init");
  EXPECT_EQ(m.graph().node(0).op_type(), "Constant");
  EXPECT_EQ(m.graph().node(0).output(0), "w_const");
  EXPECT_EQ(m.graph().node_size(), 3);
}

TEST(Weights, ListFindAndIsWeight) {
  auto m = fixtures::residual_model();
  auto list = list_weights(m);
  std::vector<std::string> names;
  for (const auto& w : list) names.push_back(w.value);
  EXPECT_EQ(names, (std::vector<std::string>{"w1", "b1", "unused_w", "w2", "scale"}));
  EXPECT_EQ(list[3].storage, WeightStorage::kConstantNode);
  EXPECT_EQ(list[3].index, 2u);
  EXPECT_EQ(list[3].shape, (std::vector<int64_t>{4, 4, 3, 3}));
  EXPECT_EQ(list[4].dtype, DType::kFloat32);
  EXPECT_TRUE(list[4].shape.empty());
  const auto& conv2 = m.graph().node(3);
  EXPECT_FALSE(is_weight(m, conv2.input(0)));
  EXPECT_TRUE(is_weight(m, conv2.input(1)));
  EXPECT_FALSE(is_weight(m, ""));
  EXPECT_FALSE(find_weight(m, "r1").has_value());
  auto missing = get_weight(m, "r1");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.error().message, "'r1'"));
}

TEST(Weights, TypedFieldsDecode) {
  auto make = [](int type, std::vector<int64_t> dims) {
    onnx::TensorProto t;
    t.set_name("t");
    t.set_data_type(type);
    for (auto d : dims) t.add_dims(d);
    return t;
  };
  {
    auto t = make(onnx::TensorProto::FLOAT, {2});
    t.add_float_data(1.5f);
    t.add_float_data(-2.f);
    auto r = tensor_from_proto(t);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->to_float(), (std::vector<float>{1.5f, -2.f}));
  }
  {
    auto t = make(onnx::TensorProto::FLOAT16, {2});
    t.add_int32_data(0x3c00);  // 1.0
    t.add_int32_data(0xc000);  // -2.0
    auto r = tensor_from_proto(t);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->dtype, DType::kFloat16);
    EXPECT_EQ(r->to_float(), (std::vector<float>{1.f, -2.f}));
  }
  {
    auto t = make(onnx::TensorProto::INT8, {3});
    for (int v : {-128, 0, 127}) t.add_int32_data(v);
    auto r = tensor_from_proto(t);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->to_float(), (std::vector<float>{-128.f, 0.f, 127.f}));
  }
  {
    auto t = make(onnx::TensorProto::INT64, {});
    t.add_int64_data(-7);
    auto r = tensor_from_proto(t);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->shape.empty());
    EXPECT_EQ(r->span<int64_t>()[0], -7);
  }
  {
    auto t = make(onnx::TensorProto::DOUBLE, {1});
    t.add_double_data(0.25);
    EXPECT_EQ(tensor_from_proto(t)->span<double>()[0], 0.25);
  }
  {
    auto t = make(onnx::TensorProto::UINT64, {1});
    t.add_uint64_data(1ull << 40);
    EXPECT_EQ(tensor_from_proto(t)->span<uint64_t>()[0], 1ull << 40);
  }
  {
    auto t = make(onnx::TensorProto::BOOL, {2});
    t.add_int32_data(1);
    t.add_int32_data(0);
    EXPECT_EQ(tensor_from_proto(t)->to_float(), (std::vector<float>{1.f, 0.f}));
  }
  {
    auto t = make(onnx::TensorProto::FLOAT, {0, 3});  // empty tensors are fine
    EXPECT_TRUE(tensor_from_proto(t).ok());
  }
}

TEST(Weights, DecodeErrorsNameTheTensor) {
  onnx::TensorProto t;
  t.set_name("bad");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(3);
  t.add_float_data(1.f);
  auto r = tensor_from_proto(t);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "'bad'") && contains(r.error().message, "float_data has 1 values"))
      << r.error().message;
  t.clear_float_data();
  t.set_raw_data(std::string(5, '\0'));
  EXPECT_TRUE(contains(tensor_from_proto(t).error().message, "raw_data has 5 bytes"));
  t.set_data_type(onnx::TensorProto::STRING);
  EXPECT_TRUE(contains(tensor_from_proto(t).error().message, "unsupported data type 8"));
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.set_data_location(onnx::TensorProto::EXTERNAL);
  EXPECT_TRUE(contains(tensor_from_proto(t).error().message, "external data"));
}

TEST(Weights, ConstantAttributeFormsReadAndKeepTheirForm) {
  GraphBuilder b;
  b.node("Constant", "cf", {}, {Attr::f("value_float", 2.5f)}, "f");
  b.node("Constant", "cfs", {}, {Attr::floats("value_floats", {1.f, 2.f})}, "fs");
  b.node("Constant", "ci", {}, {Attr::i("value_int", 7)}, "i");
  b.node("Constant", "cis", {}, {Attr::ints("value_ints", {3, 4, 5})}, "is");
  auto m = b.build();
  EXPECT_EQ(get_weight(m, "f")->to_float(), std::vector<float>{2.5f});
  EXPECT_TRUE(get_weight(m, "f")->shape.empty());
  EXPECT_EQ(get_weight(m, "fs")->shape, std::vector<int64_t>{2});
  EXPECT_EQ(get_weight(m, "i")->span<int64_t>()[0], 7);
  EXPECT_EQ(get_weight(m, "is")->to_float(), (std::vector<float>{3.f, 4.f, 5.f}));

  Tensor scalar(DType::kFloat32, {});
  *scalar.data<float>() = -1.f;
  ASSERT_TRUE(set_weight(m, "f", scalar).ok());
  EXPECT_EQ(m.graph().node(0).attribute(0).name(), "value_float");
  EXPECT_EQ(m.graph().node(0).attribute(0).f(), -1.f);
  ASSERT_TRUE(set_weight(m, "is", int64_tensor({2}, {9, 8})).ok());
  EXPECT_EQ(m.graph().node(3).attribute(0).name(), "value_ints");
  EXPECT_EQ(get_weight(m, "is")->to_float(), (std::vector<float>{9.f, 8.f}));
  // A value that no longer fits value_floats (2-D) becomes a `value` tensor in the same place.
  ASSERT_TRUE(set_weight(m, "fs", float_tensor({1, 2}, {6.f, 7.f})).ok());
  EXPECT_EQ(m.graph().node(1).attribute_size(), 1);
  EXPECT_EQ(m.graph().node(1).attribute(0).name(), "value");
  EXPECT_EQ(get_weight(m, "fs")->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(get_weight(m, "fs")->to_float(), (std::vector<float>{6.f, 7.f}));
}

TEST(Weights, InvalidNewValueLeavesTheModelUnchanged) {
  auto m = fixtures::residual_model();
  const std::string before = serialize_model(m);
  Tensor bad(DType::kFloat32, {2, 2});
  bad.bytes.resize(3);
  Status s = set_weight(m, "w1", bad);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(contains(s.error().message, "'w1'")) << s.error().message;
  EXPECT_FALSE(set_weight(m, "r1", random_tensor({1}, 1)).ok());
  EXPECT_EQ(serialize_model(m), before);
}

TEST(Attributes, TypedGetters) {
  auto m = fixtures::residual_model();
  const auto& conv1 = m.graph().node(0);
  EXPECT_EQ(*get_ints(conv1, "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  auto wrong = get_int(conv1, "pads");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().message, "node 'conv1': attribute 'pads' is INTS, not INT");
  auto missing = get_float(conv1, "alpha");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "node 'conv1': no attribute 'alpha'");
  EXPECT_EQ(*get_int_or(conv1, "group", 1), 1);
  EXPECT_FALSE(get_int_or(conv1, "pads", 0).ok());
  EXPECT_EQ(*get_float(m.graph().node(7), "value_float"), 0.5f);
  auto t = get_tensor(m.graph().node(2), "value");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->shape, (std::vector<int64_t>{4, 4, 3, 3}));
}

TEST(Attributes, SetReplacesInPlaceOrAppendsAndRemoveWorks) {
  onnx::NodeProto n;
  n.set_name("n");
  set_int(n, "a", 1);
  set_string(n, "b", "x");
  set_floats(n, "c", {1.f, 2.f});
  set_int(n, "a", 5);  // replaced in place
  ASSERT_EQ(n.attribute_size(), 3);
  EXPECT_EQ(n.attribute(0).name(), "a");
  EXPECT_EQ(*get_int(n, "a"), 5);
  EXPECT_EQ(*get_string(n, "b"), "x");
  set_float(n, "b", 0.5f);  // type may change too; position stays
  EXPECT_EQ(n.attribute(1).name(), "b");
  EXPECT_EQ(*get_float(n, "b"), 0.5f);
  set_ints(n, "d", {4});
  set_tensor(n, "e", float_tensor({1}, {3.f}));
  EXPECT_EQ(*get_floats(n, "c"), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(get_tensor(n, "e")->to_float(), std::vector<float>{3.f});
  EXPECT_TRUE(remove_attribute(n, "c"));
  EXPECT_FALSE(remove_attribute(n, "c"));
  std::vector<std::string> order;
  for (const auto& a : n.attribute()) order.push_back(a.name());
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "d", "e"}));
}

}  // namespace
}  // namespace fetafix::model
