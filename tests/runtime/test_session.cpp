#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <span>
#include <thread>

#include "model/builder.h"
#include "runtime/session.h"
#include "support/assets.h"

namespace fetafix::runtime {
namespace {

// ---- Naive references: the values ORT must reproduce -------------------------------------

// NCHW convolution, stride 1, symmetric zero padding `pad`.
std::vector<float> conv2d(const float* x, int64_t cin, int64_t h, int64_t w, const Tensor& weight,
                          const Tensor& bias, int64_t pad) {
  const int64_t cout = weight.shape[0], k = weight.shape[2];
  const int64_t oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
  const float* wt = weight.data<float>();
  std::vector<float> out(static_cast<size_t>(cout * oh * ow));
  for (int64_t co = 0; co < cout; ++co)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        double acc = bias.data<float>()[co];
        for (int64_t ci = 0; ci < cin; ++ci)
          for (int64_t ky = 0; ky < k; ++ky)
            for (int64_t kx = 0; kx < k; ++kx) {
              const int64_t iy = oy + ky - pad, ix = ox + kx - pad;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              acc += static_cast<double>(x[(ci * h + iy) * w + ix]) * wt[((co * cin + ci) * k + ky) * k + kx];
            }
        out[static_cast<size_t>((co * oh + oy) * ow + ox)] = static_cast<float>(acc);
      }
  return out;
}

std::vector<float> relu(std::vector<float> v) {
  for (float& x : v) x = std::max(x, 0.0f);
  return v;
}

// [K] x [K,N] -> [N]
std::vector<float> vec_matmul(const std::vector<float>& v, const Tensor& m) {
  const int64_t k = m.shape[0], n = m.shape[1];
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    double acc = 0;
    for (int64_t i = 0; i < k; ++i) acc += static_cast<double>(v[i]) * m.data<float>()[i * n + j];
    out[j] = static_cast<float>(acc);
  }
  return out;
}

std::vector<float> add(std::vector<float> a, const Tensor& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b.data<float>()[i];
  return a;
}

void expect_near(std::span<const float> got, const std::vector<float>& want, float tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.0f + std::fabs(want[i]))) << what << " at " << i;
}

Tensor rows_of(const Tensor& batch, int64_t begin, int64_t count) {
  std::vector<int64_t> shape = batch.shape;
  shape[0] = count;
  Tensor t(batch.dtype, shape);
  const size_t row = batch.bytes.size() / static_cast<size_t>(batch.shape[0]);
  std::memcpy(t.bytes.data(), batch.bytes.data() + row * begin, row * count);
  return t;
}

// ---- Fixture: Conv -> Relu -> Reshape -> MatMul -> Add, plus a side Shape node ------------

struct ChainModel {
  onnx::ModelProto model;
  Tensor conv_w, conv_b, fc_w, fc_b;

  // Reference values of every node output for image `i` of `x` ([N,2,5,5]).
  struct Values { std::vector<float> conv, relu, fc, y; };
  Values reference(const Tensor& x, int64_t i) const {
    Values v;
    v.conv = conv2d(x.data<float>() + i * 50, 2, 5, 5, conv_w, conv_b, 1);
    v.relu = relu(v.conv);
    v.fc = vec_matmul(v.relu, fc_w);
    v.y = add(v.fc, fc_b);
    return v;
  }
};

// batch < 0: a dynamic batch dimension.
ChainModel conv_chain(int64_t batch, int64_t opset = 13) {
  ChainModel m;
  m.conv_w = random_tensor({3, 2, 3, 3}, 11, 0.5f);
  m.conv_b = random_tensor({3}, 12, 0.1f);
  m.fc_w = random_tensor({75, 4}, 13, 0.2f);
  m.fc_b = random_tensor({4}, 14, 0.1f);
  GraphBuilder g("chain", opset);
  auto x = g.input("x", DType::kFloat32, {batch, 2, 5, 5});
  auto conv = g.node("Conv", "conv", {x, g.initializer("conv_w", m.conv_w), g.initializer("conv_b", m.conv_b)},
                     {Attr::ints("pads", {1, 1, 1, 1})});
  auto act = g.node("Relu", "relu", {conv});
  auto flat = g.node("Reshape", "flatten", {act, g.initializer("flat_shape", int64_tensor({2}, {0, -1}))});
  auto fc = g.node("MatMul", "fc", {flat, g.initializer("fc_w", m.fc_w)});
  g.node("Add", "fc_bias", {fc, g.initializer("fc_b", m.fc_b)}, {}, "y");
  g.node("Shape", "input_shape", {x});  // a value whose dim 0 is not the batch
  g.output("y", DType::kFloat32, {batch, 4});
  m.model = g.build();
  return m;
}

std::unique_ptr<Session> must_create(const onnx::ModelProto& model, const SessionOptions& options = {}) {
  auto session = Session::create(model, options, "test.onnx");
  EXPECT_TRUE(session.ok()) << (session.ok() ? "" : session.error().message);
  if (!session.ok()) return nullptr;
  return std::move(session).value();
}

std::vector<Tensor> must_run(const Session& session, const std::vector<Tensor>& inputs) {
  auto out = session.run(inputs);
  EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().message);
  return out.ok() ? std::move(out).value() : std::vector<Tensor>{};
}

std::vector<std::string> output_names(const Session& s) {
  std::vector<std::string> names;
  for (const auto& v : s.outputs()) names.push_back(v.name);
  return names;
}

// ---- Batching ------------------------------------------------------------------------------

TEST(Session, DynamicBatchRunsOnceAndMatchesSingleImageRuns) {
  auto chain = conv_chain(-1);
  SessionOptions one_thread;
  one_thread.threads = 1;
  auto session = must_create(chain.model, one_thread);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->fixed_batch(), 0);
  ASSERT_EQ(session->inputs().size(), 1u);
  EXPECT_EQ(session->inputs()[0].shape, (std::vector<int64_t>{-1, 2, 5, 5}));
  EXPECT_EQ(session->inputs()[0].dtype, DType::kFloat32);

  const Tensor x = random_tensor({8, 2, 5, 5}, 99);
  std::vector<std::vector<float>> singles;
  for (int64_t i = 0; i < 8; ++i) {
    auto out = must_run(*session, {rows_of(x, i, 1)});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].shape, (std::vector<int64_t>{1, 4}));
    expect_near(out[0].span<float>(), chain.reference(x, i).y, 1e-4f, "single image " + std::to_string(i));
    singles.push_back(out[0].to_float());
  }
  for (int64_t batch : {1, 3, 8}) {
    auto out = must_run(*session, {rows_of(x, 0, batch)});
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].shape, (std::vector<int64_t>{batch, 4}));
    for (int64_t i = 0; i < batch; ++i)
      expect_near(std::span<const float>(out[0].data<float>() + i * 4, 4), singles[i], 1e-5f,
                  "batch " + std::to_string(batch) + " image " + std::to_string(i));
  }
}

TEST(Session, FixedBatchOfOneIsRunInChunks) {
  auto chain = conv_chain(1);
  SessionOptions options;
  options.capture = {"relu_out", "input_shape_out"};
  auto session = must_create(chain.model, options);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->fixed_batch(), 1);

  const Tensor x = random_tensor({5, 2, 5, 5}, 5);
  auto out = must_run(*session, {x});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{5, 3, 5, 5}));
  for (int64_t i = 0; i < 5; ++i) {
    auto ref = chain.reference(x, i);
    expect_near(std::span<const float>(out[0].data<float>() + i * 4, 4), ref.y, 1e-4f, "y " + std::to_string(i));
    expect_near(std::span<const float>(out[1].data<float>() + i * 75, 75), ref.relu, 1e-4f,
                "relu " + std::to_string(i));
  }
  // Not per-image: kept once, from the first chunk.
  EXPECT_EQ(out[2].shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(std::vector<int64_t>(out[2].data<int64_t>(), out[2].data<int64_t>() + 4),
            (std::vector<int64_t>{1, 2, 5, 5}));
}

TEST(Session, FixedBatchTwoRejectsABatchThatIsNotAMultiple) {
  auto chain = conv_chain(2);
  auto session = must_create(chain.model);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->fixed_batch(), 2);
  auto bad = session->run({random_tensor({3, 2, 5, 5}, 1)});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("test.onnx"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("fixed batch of 2"), std::string::npos) << bad.error().message;

  const Tensor x = random_tensor({4, 2, 5, 5}, 2);
  auto out = must_run(*session, {x});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape, (std::vector<int64_t>{4, 4}));
  for (int64_t i = 0; i < 4; ++i)
    expect_near(std::span<const float>(out[0].data<float>() + i * 4, 4), chain.reference(x, i).y, 1e-4f,
                "image " + std::to_string(i));
}

// ---- Capture --------------------------------------------------------------------------------

TEST(Session, CaptureAllReturnsEveryNodeOutputWithReferenceValues) {
  auto chain = conv_chain(-1);
  SessionOptions options;
  options.capture_all = true;
  auto session = must_create(chain.model, options);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->num_model_outputs(), 1u);
  EXPECT_EQ(output_names(*session), (std::vector<std::string>{"y", "conv_out", "relu_out", "flatten_out",
                                                               "fc_out", "input_shape_out"}));
  const Tensor x = random_tensor({2, 2, 5, 5}, 21);
  auto out = must_run(*session, {x});
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{2, 3, 5, 5}));
  EXPECT_EQ(out[3].shape, (std::vector<int64_t>{2, 75}));
  EXPECT_EQ(out[4].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(out[5].dtype, DType::kInt64);
  for (int64_t i = 0; i < 2; ++i) {
    auto ref = chain.reference(x, i);
    auto image = [&](int k, size_t size) { return std::span<const float>(out[k].data<float>() + i * size, size); };
    expect_near(image(0, 4), ref.y, 1e-4f, "y");
    expect_near(image(1, 75), ref.conv, 1e-4f, "conv");
    expect_near(image(2, 75), ref.relu, 1e-4f, "relu");
    expect_near(image(3, 75), ref.relu, 1e-4f, "flatten");
    expect_near(image(4, 4), ref.fc, 1e-4f, "fc");
  }
}

TEST(Session, CaptureAllFollowsTopologicalOrderWhenTheFileIsOutOfOrder) {
  GraphBuilder g("unsorted");
  auto x = g.input("x", DType::kFloat32, {-1, 3});
  g.node("Neg", "third", {"b"}, {}, "y");
  g.node("Relu", "second", {"a"}, {}, "b");
  g.node("Abs", "first", {x}, {}, "a");
  g.output("y", DType::kFloat32, {-1, 3});
  SessionOptions options;
  options.capture_all = true;
  auto session = must_create(g.build(), options);
  ASSERT_TRUE(session);
  EXPECT_EQ(output_names(*session), (std::vector<std::string>{"y", "a", "b"}));
  auto out = must_run(*session, {float_tensor({1, 3}, {-1, 2, -3})});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].to_float(), (std::vector<float>{-1, -2, -3}));
  EXPECT_EQ(out[1].to_float(), (std::vector<float>{1, 2, 3}));
}

TEST(Session, CaptureSubsetKeepsTheRequestedOrderAndSkipsModelOutputs) {
  auto chain = conv_chain(-1);
  SessionOptions options;
  options.capture = {"fc_out", "y", "conv_out", "fc_out", "x", "fc_b"};
  auto session = must_create(chain.model, options);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->num_model_outputs(), 1u);
  EXPECT_EQ(output_names(*session), (std::vector<std::string>{"y", "fc_out", "conv_out", "x", "fc_b"}));
  const Tensor x = random_tensor({1, 2, 5, 5}, 31);
  auto out = must_run(*session, {x});
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[4].bytes, chain.fc_b.bytes);  // and an initializer
  auto ref = chain.reference(x, 0);
  expect_near(out[1].span<float>(), ref.fc, 1e-4f, "fc");
  expect_near(out[2].span<float>(), ref.conv, 1e-4f, "conv");
  EXPECT_EQ(out[3].bytes, x.bytes);  // a graph input can be captured too
}

TEST(Session, CaptureOfUnknownNamesIsAnErrorNamingThem) {
  auto chain = conv_chain(-1);
  SessionOptions options;
  options.capture = {"relu_out", "no_such_value", "typo_out"};
  auto session = Session::create(chain.model, options, "target.onnx");
  ASSERT_FALSE(session.ok());
  const std::string& msg = session.error().message;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(msg.rfind("target.onnx: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("'no_such_value'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'typo_out'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("'relu_out'"), std::string::npos) << msg;
}

TEST(Session, NonTensorValuesAreSkippedByCaptureAllAndRefusedByName) {
  GraphBuilder g("sequences", 13);
  auto x = g.input("x", DType::kFloat32, {-1, 2});
  auto doubled = g.node("Add", "double", {x, x});
  auto seq = g.node("SequenceConstruct", "pack", {x, doubled});
  g.node("SequenceAt", "pick", {seq, g.initializer("index", int64_tensor({}, {1}))}, {}, "y");
  g.output("y", DType::kFloat32, {-1, 2});
  SessionOptions all;
  all.capture_all = true;
  auto session = must_create(g.build(), all);
  ASSERT_TRUE(session);
  EXPECT_EQ(output_names(*session), (std::vector<std::string>{"y", "double_out"}));
  auto out = must_run(*session, {float_tensor({1, 2}, {1.5f, -2})});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].to_float(), (std::vector<float>{3, -4}));

  SessionOptions by_name;
  by_name.capture = {"pack_out"};
  auto refused = Session::create(g.build(), by_name, "seq.onnx");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("'pack_out'"), std::string::npos) << refused.error().message;
}

// ---- Shapes ---------------------------------------------------------------------------------

TEST(Session, ObservedShapesComeFromTheFirstRun) {
  auto chain = conv_chain(-1);
  SessionOptions options;
  options.capture = {"flatten_out", "input_shape_out"};
  auto session = must_create(chain.model, options);
  ASSERT_TRUE(session);
  EXPECT_TRUE(session->observed_shapes().empty());
  (void)must_run(*session, {random_tensor({3, 2, 5, 5}, 1)});
  (void)must_run(*session, {random_tensor({1, 2, 5, 5}, 2)});
  const std::map<std::string, std::vector<int64_t>> want{
      {"y", {3, 4}}, {"flatten_out", {3, 75}}, {"input_shape_out", {4}}};
  EXPECT_EQ(session->observed_shapes(), want);
}

TEST(Session, ObserveValueShapesReportsInputsIntermediatesAndOutputs) {
  auto chain = conv_chain(-1);
  auto values = observe_value_shapes(chain.model, {random_tensor({2, 2, 5, 5}, 3)}, 1);
  ASSERT_TRUE(values.ok()) << values.error().message;
  const std::map<std::string, std::vector<int64_t>> want{
      {"x", {2, 2, 5, 5}},   {"conv_out", {2, 3, 5, 5}}, {"relu_out", {2, 3, 5, 5}}, {"flatten_out", {2, 75}},
      {"fc_out", {2, 4}},    {"y", {2, 4}},              {"input_shape_out", {4}}};
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& [name, info] : *values) {
    EXPECT_EQ(name, info.name);
    got[name] = info.shape;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(values->at("input_shape_out").dtype, DType::kInt64);
  EXPECT_EQ(values->at("relu_out").dtype, DType::kFloat32);

  auto bad = observe_value_shapes(chain.model, {}, 1, "source.onnx");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("source.onnx: ", 0), 0u) << bad.error().message;
}

// ---- Types, threads, opsets -----------------------------------------------------------------

TEST(Session, Uint8InputIsCastInsideTheModel) {
  GraphBuilder g("uint8");
  auto x = g.input("pixels", DType::kUInt8, {-1, 4});
  auto cast = g.node("Cast", "to_float", {x}, {Attr::i("to", 1)});
  g.node("Mul", "scale", {cast, g.initializer("half", float_tensor({}, {0.5f}))}, {}, "y");
  g.output("y", DType::kFloat32, {-1, 4});
  auto session = must_create(g.build());
  ASSERT_TRUE(session);
  EXPECT_EQ(session->inputs()[0].dtype, DType::kUInt8);
  Tensor pixels(DType::kUInt8, {2, 4});
  const uint8_t raw[] = {0, 1, 128, 255, 7, 8, 9, 10};
  std::memcpy(pixels.bytes.data(), raw, sizeof raw);
  auto out = must_run(*session, {pixels});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to_float(), (std::vector<float>{0, 0.5f, 64, 127.5f, 3.5f, 4, 4.5f, 5}));
}

TEST(Session, OneAndTwoThreadsGiveIdenticalOutputs) {
  GraphBuilder g("wide");
  auto input = g.input("x", DType::kFloat32, {-1, 8, 24, 24});
  auto conv = g.node("Conv", "conv",
                     {input, g.initializer("w", random_tensor({16, 8, 3, 3}, 41, 0.2f)),
                      g.initializer("b", random_tensor({16}, 42))},
                     {Attr::ints("pads", {1, 1, 1, 1})});
  auto act = g.node("Relu", "relu", {conv});
  auto flat = g.node("Flatten", "flatten", {act}, {Attr::i("axis", 1)});
  g.node("MatMul", "fc", {flat, g.initializer("fc", random_tensor({16 * 24 * 24, 10}, 43, 0.01f))}, {}, "y");
  g.output("y", DType::kFloat32, {-1, 10});
  const Tensor x = random_tensor({4, 8, 24, 24}, 44);
  std::vector<std::vector<Tensor>> results;
  for (int threads : {1, 2}) {
    SessionOptions options;
    options.threads = threads;
    options.capture_all = true;
    auto session = must_create(g.build(), options);
    ASSERT_TRUE(session);
    results.push_back(must_run(*session, {x}));
  }
  ASSERT_EQ(results[0].size(), 4u);
  ASSERT_EQ(results[1].size(), 4u);
  for (size_t i = 0; i < results[0].size(); ++i) {
    EXPECT_EQ(results[0][i].shape, results[1][i].shape) << i;
    EXPECT_EQ(results[0][i].bytes, results[1][i].bytes) << "output " << i << " differs between 1 and 2 threads";
  }
}

TEST(Session, Opset21WithIrVersion10Runs) {
  auto chain = conv_chain(-1, 21);
  chain.model.set_ir_version(10);
  auto session = must_create(chain.model);
  ASSERT_TRUE(session);
  const Tensor x = random_tensor({2, 2, 5, 5}, 51);
  auto out = must_run(*session, {x});
  ASSERT_EQ(out.size(), 1u);
  for (int64_t i = 0; i < 2; ++i)
    expect_near(std::span<const float>(out[0].data<float>() + i * 4, 4), chain.reference(x, i).y, 1e-4f,
                "image " + std::to_string(i));
}

TEST(Session, OptimizedAndUnoptimizedSessionsAgree) {
  auto chain = conv_chain(-1);
  SessionOptions plain;
  plain.optimize = false;
  auto a = must_create(chain.model), b = must_create(chain.model, plain);
  ASSERT_TRUE(a && b);
  const Tensor x = random_tensor({3, 2, 5, 5}, 61);
  auto ya = must_run(*a, {x}), yb = must_run(*b, {x});
  ASSERT_EQ(ya.size(), 1u);
  ASSERT_EQ(yb.size(), 1u);
  expect_near(ya[0].span<float>(), yb[0].to_float(), 1e-5f, "optimized vs not");
}

// ---- Errors ---------------------------------------------------------------------------------

void expect_load_error(const onnx::ModelProto& model, const std::string& what) {
  ::testing::internal::CaptureStderr();
  auto session = Session::create(model, {}, "target.onnx");
  const std::string printed = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(session.ok()) << what;
  const std::string& msg = session.error().message;
  EXPECT_EQ(msg.rfind("target.onnx: ONNX Runtime cannot load the model: ", 0), 0u) << what << ": " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": " << msg;
  EXPECT_EQ(msg.find("onnxruntime_src"), std::string::npos) << what << ": " << msg;
  EXPECT_GT(msg.size(), std::string("target.onnx: ONNX Runtime cannot load the model: ").size()) << what;
  EXPECT_EQ(printed, "") << what << ": ONNX Runtime wrote to the terminal";
}

TEST(SessionErrors, BrokenModelsAreErrorsNotCrashes) {
  expect_load_error(onnx::ModelProto{}, "empty proto");

  onnx::ModelProto garbage;
  garbage.set_ir_version(7);
  garbage.mutable_graph()->add_node()->set_op_type("Relu");  // no inputs, no opset import
  expect_load_error(garbage, "garbage proto");

  GraphBuilder unknown_op("unknown");
  auto x = unknown_op.input("x", DType::kFloat32, {1, 2});
  unknown_op.node("FrobnicateTensor", "mystery", {x}, {}, "y");
  unknown_op.output("y", DType::kFloat32, {1, 2});
  expect_load_error(unknown_op.build(), "unknown op");

  GraphBuilder dangling("dangling");
  dangling.input("x", DType::kFloat32, {1, 2});
  dangling.node("Relu", "relu", {"not_produced_anywhere"}, {}, "y");
  dangling.output("y", DType::kFloat32, {1, 2});
  expect_load_error(dangling.build(), "dangling input");
}

TEST(SessionErrors, WrongInputsAreErrorsNamingTheInput) {
  auto chain = conv_chain(-1);
  auto session = must_create(chain.model);
  ASSERT_TRUE(session);
  auto expect_error = [&](const std::vector<Tensor>& inputs, const std::string& fragment) {
    auto out = session->run(inputs);
    ASSERT_FALSE(out.ok()) << fragment;
    EXPECT_EQ(out.error().message.rfind("test.onnx: ", 0), 0u) << out.error().message;
    EXPECT_NE(out.error().message.find(fragment), std::string::npos) << out.error().message;
    EXPECT_EQ(out.error().message.find('\n'), std::string::npos) << out.error().message;
  };
  expect_error({}, "takes 1 input(s), got 0");
  Tensor as_uint8(DType::kUInt8, {1, 2, 5, 5});
  expect_error({as_uint8}, "input 'x' must be float32, got uint8");
  expect_error({random_tensor({1, 5, 5, 2}, 1)}, "input 'x' must have shape [?,2,5,5], got [1,5,5,2]");
  expect_error({random_tensor({1, 2, 5}, 1)}, "input 'x' must have shape");
  Tensor short_buffer = random_tensor({1, 2, 5, 5}, 1);
  short_buffer.bytes.resize(16);
  expect_error({short_buffer}, "input 'x' holds 16 bytes");

  auto fixed = must_create(conv_chain(1).model);
  ASSERT_TRUE(fixed);
  auto out = fixed->run({random_tensor({2, 2, 4, 5}, 1)});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("input 'x' must have shape [1,2,5,5] with batch 2"), std::string::npos)
      << out.error().message;
}

TEST(SessionErrors, FixedBatchWithAScalarSecondInputIsRunWholeOrRefused) {
  GraphBuilder g("scalar_side_input");
  auto x = g.input("x", DType::kFloat32, {2, 3});
  auto gain = g.input("gain", DType::kFloat32, {});
  g.node("Mul", "scale", {x, gain}, {}, "y");
  g.output("y", DType::kFloat32, {2, 3});
  auto session = must_create(g.build());
  ASSERT_TRUE(session);
  EXPECT_EQ(session->fixed_batch(), 2);
  auto whole = must_run(*session, {float_tensor({2, 3}, {1, 2, 3, 4, 5, 6}), float_tensor({}, {2})});
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].to_float(), (std::vector<float>{2, 4, 6, 8, 10, 12}));
  auto chunked = session->run({random_tensor({4, 3}, 1), float_tensor({}, {2})});
  ASSERT_FALSE(chunked.ok());
  EXPECT_NE(chunked.error().message.find("input 'gain' has no batch dimension"), std::string::npos)
      << chunked.error().message;
}

TEST(SessionErrors, RuntimeFailuresBecomeErrors) {
  // Reshape to a shape that does not fit: only detectable when running.
  GraphBuilder g("bad_reshape");
  auto x = g.input("x", DType::kFloat32, {-1, 6});
  g.node("Reshape", "reshape", {x, g.initializer("shape", int64_tensor({2}, {-1, 4}))}, {}, "y");
  g.output("y", DType::kFloat32, {-1, 4});
  auto session = must_create(g.build());
  ASSERT_TRUE(session);
  ::testing::internal::CaptureStderr();
  auto out = session->run({random_tensor({1, 6}, 1)});
  const std::string printed = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().message.rfind("test.onnx: ONNX Runtime failed to run the model: ", 0), 0u)
      << out.error().message;
  EXPECT_EQ(out.error().message.find('\n'), std::string::npos);
  // ORT's source locations are noise to a user; its own words stay.
  EXPECT_EQ(out.error().message.find("onnxruntime_src"), std::string::npos) << out.error().message;
  EXPECT_NE(out.error().message.find("cannot be reshaped"), std::string::npos) << out.error().message;
  EXPECT_EQ(printed, "");
}

TEST(SessionErrors, StaleValueInfoDoesNotDisturbCaptureOrPrint) {
  // Converters leave value_info behind that no longer matches; capture must not trust it.
  auto chain = conv_chain(-1);
  auto* stale = chain.model.mutable_graph()->add_value_info();
  stale->set_name("relu_out");
  auto* type = stale->mutable_type()->mutable_tensor_type();
  type->set_elem_type(1);
  type->mutable_shape()->add_dim()->set_dim_value(7);
  SessionOptions options;
  options.capture = {"relu_out"};
  ::testing::internal::CaptureStderr();
  auto session = Session::create(chain.model, options, "stale.onnx");
  std::vector<Tensor> out;
  if (session.ok()) out = must_run(**session, {random_tensor({2, 2, 5, 5}, 1)});
  const std::string printed = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(session.ok()) << session.error().message;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{2, 3, 5, 5}));
  EXPECT_EQ(printed, "");
}

// ---- Concurrency ----------------------------------------------------------------------------

TEST(Session, TwoSessionsOnTwoThreadsAndOneSessionSharedGiveCorrectResults) {
  auto dynamic = conv_chain(-1);
  auto fixed = conv_chain(1);
  SessionOptions options;
  options.threads = 1;
  auto a = must_create(dynamic.model, options), b = must_create(fixed.model, options);
  ASSERT_TRUE(a && b);
  const Tensor x = random_tensor({3, 2, 5, 5}, 71);
  std::vector<float> want;
  for (int64_t i = 0; i < 3; ++i) {
    auto y = dynamic.reference(x, i).y;
    want.insert(want.end(), y.begin(), y.end());
  }
  auto hammer = [&](const Session* s, int* failures) {
    for (int iter = 0; iter < 25; ++iter) {
      auto out = s->run({x});
      if (!out.ok() || out->size() != 1 || out->at(0).numel() != 12) { ++*failures; continue; }
      auto got = out->at(0).to_float();
      for (size_t k = 0; k < got.size(); ++k)
        if (std::fabs(got[k] - want[k]) > 1e-4f * (1 + std::fabs(want[k]))) { ++*failures; break; }
    }
  };
  int failures[4] = {0, 0, 0, 0};
  std::thread t1(hammer, a.get(), &failures[0]), t2(hammer, b.get(), &failures[1]);
  std::thread t3(hammer, a.get(), &failures[2]), t4(hammer, b.get(), &failures[3]);
  t1.join(); t2.join(); t3.join(); t4.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(Session, RuntimeVersionIsReported) {
  const std::string v = runtime_version();
  EXPECT_EQ(v.rfind("1.", 0), 0u) << v;
}

// ---- Real model -----------------------------------------------------------------------------

TEST(SessionAsset, MobileNetV2CapturesEveryIntermediate) {
  FETAFIX_REQUIRE_ASSET(path, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  std::ifstream file(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(bytes)) << path;

  std::set<std::string> node_outputs;
  for (const auto& node : model.graph().node())
    for (const auto& out : node.output())
      if (!out.empty()) node_outputs.insert(out);

  SessionOptions options;
  options.capture_all = true;
  auto session = Session::create(model, options, path.string());
  ASSERT_TRUE(session.ok()) << session.error().message;
  const Session& s = **session;
  ASSERT_EQ(s.inputs().size(), 1u);
  EXPECT_EQ(s.inputs()[0].dtype, DType::kUInt8);
  EXPECT_EQ(s.num_model_outputs(), 1u);
  EXPECT_EQ(s.outputs().size(), node_outputs.size());  // every node output, the model output once

  Tensor image(DType::kUInt8, {1, 224, 224, 3});
  Rng rng(3);
  for (auto& b : image.bytes) b = static_cast<std::byte>(rng.next_u64() & 0xff);
  auto out = s.run({image});
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_EQ(out->size(), s.outputs().size());
  EXPECT_EQ(out->at(0).shape, (std::vector<int64_t>{1, 1000}));
  EXPECT_EQ(s.observed_shapes().size(), node_outputs.size());
}

}  // namespace
}  // namespace fetafix::runtime
