#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "fixtures.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/weights.h"
#include "support/assets.h"

namespace fetafix::model {
namespace {

namespace fs = std::filesystem;

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> folder_listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ModelIO, SaveLoadRoundTripIsByteIdentical) {
  const auto dir = testing::temp_dir("model_io_roundtrip");
  const auto original = fixtures::residual_model();
  ASSERT_TRUE(save_model(original, dir / "a.onnx").ok());
  auto loaded = load_model(dir / "a.onnx");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->path, dir / "a.onnx");
  EXPECT_EQ(serialize_model(loaded->proto), serialize_model(original));
  ASSERT_TRUE(save_model(loaded->proto, dir / "b.onnx").ok());
  EXPECT_EQ(read_bytes(dir / "a.onnx"), read_bytes(dir / "b.onnx"));
  EXPECT_EQ(read_bytes(dir / "a.onnx"), serialize_model(original));
}

TEST(ModelIO, SerializationIsDeterministic) {
  const auto a = serialize_model(fixtures::residual_model());
  const auto b = serialize_model(fixtures::residual_model());
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

TEST(ModelIO, MissingFileIsAnErrorNamingIt) {
  const auto dir = testing::temp_dir("model_io_missing");
  auto r = load_model(dir / "nope.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "nope.onnx")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "not found")) << r.error().message;
}

TEST(ModelIO, FolderEmptyGarbageAndTruncatedFilesAreErrors) {
  const auto dir = testing::temp_dir("model_io_bad");
  write_bytes(dir / "empty.onnx", "");
  write_bytes(dir / "garbage.onnx", std::string(32, '\xff'));
  write_bytes(dir / "text.onnx", "hello, this is not a model at all\n");
  const std::string good = serialize_model(fixtures::residual_model());
  write_bytes(dir / "truncated.onnx", good.substr(0, good.size() / 2));

  struct Case { std::string file, expected; };
  for (const auto& c : std::vector<Case>{{"empty.onnx", "empty file"},
                                         {"garbage.onnx", "not an ONNX model"},
                                         {"text.onnx", "not an ONNX model"},
                                         {"truncated.onnx", "not an ONNX model"},
                                         {"", "is a folder"}}) {
    auto r = load_model(dir / c.file);
    ASSERT_FALSE(r.ok()) << c.file;
    EXPECT_TRUE(contains(r.error().message, c.expected)) << c.file << ": " << r.error().message;
    EXPECT_TRUE(contains(r.error().message, (dir / c.file).string())) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
}

TEST(ModelIO, ParseModelFromBytes) {
  const std::string bytes = serialize_model(fixtures::residual_model());
  auto r = parse_model(bytes, "in-memory");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->path.empty());
  EXPECT_EQ(serialize_model(r->proto), bytes);
  auto empty = parse_model("", "label-x");
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(contains(empty.error().message, "label-x"));
  // A valid protobuf that is not a model: a TensorProto parses but has no graph field.
  onnx::ModelProto no_graph;
  no_graph.set_ir_version(8);
  auto ng = parse_model(no_graph.SerializeAsString(), "nograph");
  ASSERT_FALSE(ng.ok());
  EXPECT_TRUE(contains(ng.error().message, "no graph")) << ng.error().message;
}

TEST(ModelIO, SaveRefusesToOverwriteAnInput) {
  const auto dir = testing::temp_dir("model_io_overwrite");
  const auto model = fixtures::residual_model();
  ASSERT_TRUE(save_model(model, dir / "in.onnx").ok());
  const std::string before = read_bytes(dir / "in.onnx");
  auto other = model;
  other.set_producer_name("changed");
  for (const fs::path& target : std::vector<fs::path>{dir / "in.onnx", dir / "." / "in.onnx"}) {
    Status s = save_model(other, target, {dir / "in.onnx"});
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(contains(s.error().message, target.string())) << s.error().message;
    EXPECT_TRUE(contains(s.error().message, "overwrite")) << s.error().message;
  }
  EXPECT_EQ(read_bytes(dir / "in.onnx"), before);
  EXPECT_TRUE(save_model(other, dir / "out.onnx", {dir / "in.onnx"}).ok());
}

TEST(ModelIO, AtomicSaveLeavesNoTemporaryFile) {
  const auto dir = testing::temp_dir("model_io_atomic");
  const auto model = fixtures::residual_model();
  ASSERT_TRUE(save_model(model, dir / "m.onnx").ok());
  ASSERT_TRUE(save_model(model, dir / "m.onnx").ok());  // replacing an existing file
  EXPECT_EQ(folder_listing(dir), std::vector<std::string>{"m.onnx"});
  Status bad = save_model(model, dir / "no_such_folder" / "m.onnx");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(folder_listing(dir), std::vector<std::string>{"m.onnx"});
}

// IR 10 / opset 21 models carry fields and types ONNX 1.12 does not know: they must load and
// re-serialize unchanged.
TEST(ModelIO, NewerIrVersionLoadsAndRoundTrips) {
  GraphBuilder b("ir10", 21);
  b.input("x", DType::kFloat32, {1, 4});
  b.node("Relu", "r", {"x"}, {}, "y");
  b.output("y", DType::kFloat32, {1, 4});
  auto m = b.build();
  m.set_ir_version(10);
  // NodeProto field 8 ("overload", IR 10) and a float8e4m3fn initializer (data_type 17).
  m.mutable_graph()->mutable_node(0)->GetReflection()->MutableUnknownFields(m.mutable_graph()->mutable_node(0))
      ->AddLengthDelimited(8, "my_overload");
  auto* f8 = m.mutable_graph()->add_initializer();
  f8->set_name("f8");
  f8->set_data_type(17);
  f8->add_dims(2);
  f8->set_raw_data(std::string("\x38\x40", 2));
  const std::string bytes = serialize_model(m);

  const auto dir = testing::temp_dir("model_io_ir10");
  write_bytes(dir / "ir10.onnx", bytes);
  auto loaded = load_model(dir / "ir10.onnx");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->proto.ir_version(), 10);
  EXPECT_EQ(loaded->proto.opset_import(0).version(), 21);
  const auto& node = loaded->proto.graph().node(0);
  EXPECT_EQ(node.GetReflection()->GetUnknownFields(node).field_count(), 1);
  EXPECT_EQ(serialize_model(loaded->proto), bytes);
  auto w = get_weight(loaded->proto, "f8");
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(contains(w.error().message, "unsupported data type 17")) << w.error().message;
}

// ---- external data ----------------------------------------------------------------------

// The residual model with w1 (an initializer) and w2 (a Constant's tensor) moved to `location`,
// at offsets 16 and 16 + size(w1); the data file is written to `data_path` unless empty.
onnx::ModelProto with_external_weights(const std::string& location, const fs::path& data_path) {
  auto m = fixtures::residual_model();
  auto* w1 = m.mutable_graph()->mutable_initializer(0);
  auto* w2 = m.mutable_graph()->mutable_node(2)->mutable_attribute(0)->mutable_t();
  std::string data(16, 'J');
  auto move_out = [&](onnx::TensorProto* t) {
    auto add = [&](const std::string& k, const std::string& v) {
      auto* e = t->add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    add("location", location);
    add("offset", std::to_string(data.size()));
    add("length", std::to_string(t->raw_data().size()));
    data += t->raw_data();
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
  };
  move_out(w1);
  move_out(w2);
  if (!data_path.empty()) write_bytes(data_path, data);
  return m;
}

TEST(ModelIO, ExternalDataInsideTheModelFolderLoads) {
  const auto dir = testing::temp_dir("model_io_external");
  fs::create_directories(dir / "sub");
  const auto reference = fixtures::residual_model();
  for (const std::string location : {"weights.bin", "sub/weights.bin", "./sub/../weights.bin"}) {
    write_bytes(dir / "m.onnx", serialize_model(with_external_weights(location, dir / location)));
    auto loaded = load_model(dir / "m.onnx");
    ASSERT_TRUE(loaded.ok()) << location << ": " << loaded.error().message;
    EXPECT_EQ(serialize_model(loaded->proto), serialize_model(reference)) << location;
    auto w2 = get_weight(loaded->proto, "w2");
    ASSERT_TRUE(w2.ok()) << w2.error().message;
    EXPECT_EQ(w2->bytes, random_tensor({4, 4, 3, 3}, 4, 0.2f).bytes);
  }
}

TEST(ModelIO, ExternalDataOutsideTheFolderIsRefused) {
  const auto root = testing::temp_dir("model_io_external_escape");
  const auto dir = root / "models";
  fs::create_directories(dir);
  // A real data file outside the model folder, so only the location check can refuse it.
  with_external_weights("x", root / "outside.bin");

  struct Case { std::string location, expected; };
  for (const auto& c : std::vector<Case>{{"../outside.bin", "outside the model's folder"},
                                         {(root / "outside.bin").string(), "absolute"},
                                         {"sub/../../outside.bin", "outside the model's folder"},
                                         {"link.bin", "resolves outside"},
                                         {"missing.bin", "not found"}}) {
    fs::remove(dir / "link.bin");
    fs::create_symlink(root / "outside.bin", dir / "link.bin");
    write_bytes(dir / "m.onnx", serialize_model(with_external_weights(c.location, {})));
    auto r = load_model(dir / "m.onnx");
    ASSERT_FALSE(r.ok()) << c.location;
    EXPECT_TRUE(contains(r.error().message, c.expected)) << c.location << ": " << r.error().message;
    EXPECT_TRUE(contains(r.error().message, (dir / "m.onnx").string())) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, "w1")) << r.error().message;
  }
}

TEST(ModelIO, ExternalDataRangePastEndOfFileIsRefused) {
  const auto dir = testing::temp_dir("model_io_external_short");
  auto m = with_external_weights("weights.bin", dir / "weights.bin");
  fs::resize_file(dir / "weights.bin", 100);
  write_bytes(dir / "m.onnx", serialize_model(m));
  auto r = load_model(dir / "m.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "past the end")) << r.error().message;
}

TEST(ModelIO, ParseModelRefusesExternalData) {
  const auto dir = testing::temp_dir("model_io_external_parse");
  auto m = with_external_weights("weights.bin", dir / "weights.bin");
  auto r = parse_model(serialize_model(m), "bytes");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "external data")) << r.error().message;
}

// ---- real converter outputs (skipped when ../shared/assets is absent) ---------------------

TEST(ModelIO, RealModelsLoadAndReserializeStably) {
  FETAFIX_REQUIRE_ASSET(ppocr, "models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
  FETAFIX_REQUIRE_ASSET(mobilenet, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  for (const auto& path : {ppocr, mobilenet}) {
    auto loaded = load_model(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    const std::string once = serialize_model(loaded->proto);
    auto again = parse_model(once, path.string());
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(serialize_model(again->proto), once) << path;
  }
}

}  // namespace
}  // namespace fetafix::model

namespace fetafix::model {
namespace {

// Every weight of the real models decodes, and the graph view handles them.
TEST(ModelIO, RealModelsWeightsAndGraphView) {
  FETAFIX_REQUIRE_ASSET(ppocr, "models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
  FETAFIX_REQUIRE_ASSET(mobilenet, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  for (const auto& path : {ppocr, mobilenet}) {
    SCOPED_TRACE(path.string());
    auto loaded = load_model(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    const auto weights = list_weights(loaded->proto);
    size_t constants = 0;
    for (const auto& w : weights) {
      auto t = get_weight(loaded->proto, w.value);
      ASSERT_TRUE(t.ok()) << t.error().message;
      EXPECT_EQ(t->shape, w.shape) << w.value;
      constants += w.storage == WeightStorage::kConstantNode;
    }
    if (path == ppocr) {
      EXPECT_GT(constants, 50u);  // paddle2onnx stores weights as Constant nodes
    }
    auto view = GraphView::build(loaded->proto.graph());
    ASSERT_TRUE(view.ok()) << view.error().message;
    EXPECT_EQ(view->topological_order().size(), view->node_count());
    EXPECT_EQ(view->real_inputs().size(), 1u);
    size_t reached = 0;
    for (size_t i = 0; i < view->node_count(); ++i) reached += view->reached_from_inputs(i);
    EXPECT_GT(reached, 20u);
    const std::string bytes = serialize_model(loaded->proto);
    std::ifstream in(path, std::ios::binary);
    std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // These converter outputs are already canonical: load + save reproduces the file exactly.
    EXPECT_TRUE(bytes == file);
  }
}

}  // namespace
}  // namespace fetafix::model
