#include "runtime/session.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>
#include <mutex>
#include <queue>
#include <regex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <onnxruntime_cxx_api.h>
#include <onnxruntime_session_options_config_keys.h>

namespace fetafix::runtime {
namespace {

// One Env per process, as ONNX Runtime requires. It is never destroyed: tearing it down
// during static destruction races with ORT's own statics and can crash at exit.
// FATAL level: ORT's warnings (e.g. shape-merge notes on converted models) and its error
// logs (printed before it throws) would otherwise reach the user's terminal, while every
// error comes back to us as an exception and becomes a one-line Error anyway.
Ort::Env& shared_env() {
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_FATAL, "fetafix");
  return *env;
}

// Drops the "/onnxruntime_src/x/y.cc:181 onnxruntime::Model::Model(<signature>) " prefixes
// ORT puts before its messages: they name ORT's sources, not the user's model.
std::string strip_source_locations(std::string s) {
  static const std::regex location(R"((\S*/)?[\w.-]+\.(cc|cpp|h):\d+ )");
  std::string out;
  std::smatch m;
  while (std::regex_search(s, m, location)) {
    out += m.prefix().str();
    std::string rest = m.suffix().str();
    // A function signature follows when the next word is a qualified name followed by '('.
    const size_t paren = rest.find('(');
    const size_t space = rest.find(' ');
    if (paren != std::string::npos && paren < space && rest.substr(0, paren).find("::") != std::string::npos) {
      int depth = 0;
      size_t i = paren;
      for (; i < rest.size(); ++i) {
        if (rest[i] == '(') ++depth;
        else if (rest[i] == ')' && --depth == 0) break;
      }
      if (i < rest.size()) {
        rest.erase(0, i + 1);
        if (rest.rfind(" const", 0) == 0) rest.erase(0, 6);
        if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      }
    }
    s = std::move(rest);
  }
  return out + s;
}

std::string first_line(const char* text) {
  std::string s = text ? text : "";
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  s = strip_source_locations(std::move(s));
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown error" : s;
}

bool is_supported_dtype(int32_t t) {
  switch (static_cast<DType>(t)) {
    case DType::kFloat32: case DType::kUInt8: case DType::kInt8: case DType::kUInt16: case DType::kInt16:
    case DType::kInt32: case DType::kInt64: case DType::kBool: case DType::kFloat16: case DType::kFloat64:
    case DType::kUInt32: case DType::kUInt64: case DType::kBFloat16:
      return true;
    case DType::kUndefined:
      return false;
  }
  return false;
}

std::string quoted_list(const std::vector<std::string>& names, size_t max_shown = 5) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < max_shown; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > max_shown) s += fmt::format(" and {} more", names.size() - max_shown);
  return s;
}

Result<std::string> serialize_deterministic(const onnx::ModelProto& model, const std::string& label) {
  const size_t size = model.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    return make_error("{}: the model is {} bytes, over protobuf's 2 GB limit; external data is not supported",
                      label, size);
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    // Map fields (e.g. metadata) would otherwise serialize in hash order.
    coded.SetSerializationDeterministic(true);
    if (!model.SerializeToCodedStream(&coded) || coded.HadError())
      return make_error("{}: cannot serialize the model (a required field is missing)", label);
  }
  return bytes;
}

// Node order for capture_all: topological, and equal to the file's order whenever that order
// is already valid (the ONNX spec requires it, but some converters emit nodes out of order).
std::vector<int> topological_node_order(const onnx::GraphProto& graph) {
  const int n = graph.node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto& out : graph.node(i).output())
      if (!out.empty()) producer.emplace(out, i);
  std::vector<std::vector<int>> consumers(n);
  std::vector<int> pending(n, 0);
  for (int i = 0; i < n; ++i) {
    std::set<int> deps;
    for (const auto& in : graph.node(i).input())
      if (auto it = producer.find(in); it != producer.end() && it->second != i) deps.insert(it->second);
    pending[i] = static_cast<int>(deps.size());
    for (int d : deps) consumers[d].push_back(i);
  }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int c : consumers[i])
      if (--pending[c] == 0) ready.push(c);
  }
  // A cycle: ORT will refuse the model; keep the leftover nodes in file order so the
  // error comes from ORT, not from a silently shorter capture list.
  if (static_cast<int>(order.size()) < n) {
    std::vector<bool> placed(n, false);
    for (int i : order) placed[i] = true;
    for (int i = 0; i < n; ++i)
      if (!placed[i]) order.push_back(i);
  }
  return order;
}

// The value names to expose, in the order the caller will see them. Model outputs are
// excluded (they already are outputs).
Result<std::vector<std::string>> resolve_capture_names(const onnx::GraphProto& graph, const SessionOptions& options,
                                                       const std::string& label) {
  std::unordered_set<std::string> model_outputs;
  for (const auto& o : graph.output()) model_outputs.insert(o.name());
  std::vector<std::string> names;
  std::unordered_set<std::string> taken;
  auto take = [&](const std::string& name) {
    if (!name.empty() && !model_outputs.count(name) && taken.insert(name).second) names.push_back(name);
  };
  if (options.capture_all) {
    for (int i : topological_node_order(graph))
      for (const auto& out : graph.node(i).output()) take(out);
    return names;
  }
  std::unordered_set<std::string> known(model_outputs.begin(), model_outputs.end());
  for (const auto& node : graph.node())
    for (const auto& out : node.output()) known.insert(out);
  for (const auto& in : graph.input()) known.insert(in.name());
  for (const auto& init : graph.initializer()) known.insert(init.name());
  std::vector<std::string> unknown;
  for (const auto& name : options.capture) {
    if (!known.count(name)) unknown.push_back(name);
    else take(name);
  }
  if (!unknown.empty())
    return make_error("{}: cannot capture {}: no node output, input or initializer of the main graph has {}",
                      label, quoted_list(unknown), unknown.size() == 1 ? "that name" : "those names");
  return names;
}

// Type and declared shape of a session input/output; nullopt-like (kUndefined) when it is
// not a tensor of a dtype fetafix handles.
ValueInfo describe(const std::string& name, const Ort::TypeInfo& type, bool* is_tensor) {
  ValueInfo info;
  info.name = name;
  *is_tensor = type.GetONNXType() == ONNX_TYPE_TENSOR;
  if (!*is_tensor) return info;
  auto tensor = type.GetTensorTypeAndShapeInfo();
  const int32_t elem = static_cast<int32_t>(tensor.GetElementType());
  info.dtype = is_supported_dtype(elem) ? static_cast<DType>(elem) : DType::kUndefined;
  info.shape = tensor.GetShape();
  for (auto& d : info.shape)
    if (d < 0) d = -1;
  return info;
}

}  // namespace

struct Session::Impl {
  std::string label;
  // mutable: Ort::Session::Run is non-const in the C++ API, yet thread-safe (ORT documents it).
  mutable Ort::Session session{nullptr};
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  size_t num_model_outputs = 0;
  int64_t fixed_batch = 0;
  // Names as C strings for Run(); the std::string owners live in inputs/outputs.
  std::vector<const char*> input_names;
  std::vector<const char*> output_names;

  mutable std::mutex observed_mutex;
  mutable bool observed_recorded = false;
  mutable std::map<std::string, std::vector<int64_t>> observed;

  // Fills `out` (one tensor per output), reusing the storage of tensors already there when
  // their dtype matches and their capacity suffices.
  Status run_chunk(const std::vector<Tensor>& inputs, int64_t row_begin, int64_t rows, bool slice,
                   std::vector<Tensor>& out) const;
};

namespace {

// ONNX Runtime's options for one session. Captures turn graph optimization off: fused nodes
// would no longer produce the intermediate values asked for.
Ort::SessionOptions ort_session_options(const SessionOptions& options, bool capturing) {
  Ort::SessionOptions ort_options;
  ort_options.SetIntraOpNumThreads(std::max(0, options.threads));
  ort_options.SetInterOpNumThreads(1);
  ort_options.SetExecutionMode(ORT_SEQUENTIAL);
  ort_options.SetGraphOptimizationLevel(options.optimize && !capturing ? ORT_ENABLE_ALL : ORT_DISABLE_ALL);
  ort_options.AddConfigEntry(kOrtSessionOptionsConfigAllowIntraOpSpinning, options.allow_spinning ? "1" : "0");
  ort_options.AddConfigEntry(kOrtSessionOptionsConfigAllowInterOpSpinning, options.allow_spinning ? "1" : "0");
  if (!options.save_optimized_to.empty()) {
    ort_options.SetGraphOptimizationLevel(ORT_ENABLE_BASIC);
    ort_options.SetOptimizedModelFilePath(options.save_optimized_to.c_str());
  }
  return ort_options;
}

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

const std::vector<ValueInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<ValueInfo>& Session::outputs() const { return impl_->outputs; }
size_t Session::num_model_outputs() const { return impl_->num_model_outputs; }
int64_t Session::fixed_batch() const { return impl_->fixed_batch; }

Result<std::unique_ptr<Session>> Session::create(const onnx::ModelProto& model, const SessionOptions& options,
                                                 const std::string& model_label) {
  const bool capturing = options.capture_all || !options.capture.empty();
  std::vector<std::string> capture_names;
  const onnx::ModelProto* to_load = &model;
  onnx::ModelProto with_captures;
  if (capturing) {
    FETAFIX_ASSIGN_OR_RETURN(capture_names, resolve_capture_names(model.graph(), options, model_label));
    with_captures = model;
    // No type on the added outputs: ORT infers every node output's type while resolving the
    // graph. Copying declared value_info instead is fragile: converters leave stale shapes
    // there, which ORT then "merges" into wrong declared output shapes.
    for (const auto& name : capture_names) with_captures.mutable_graph()->add_output()->set_name(name);
    to_load = &with_captures;
  }
  FETAFIX_ASSIGN_OR_RETURN(std::string bytes, serialize_deterministic(*to_load, model_label));

  auto impl = std::make_unique<Impl>();
  impl->label = model_label;
  try {
    impl->session = Ort::Session(shared_env(), bytes.data(), bytes.size(), ort_session_options(options, capturing));
  } catch (const std::exception& e) {
    return make_error("{}: ONNX Runtime cannot load the model: {}", model_label, first_line(e.what()));
  }

  try {
    Ort::AllocatorWithDefaultOptions allocator;
    for (size_t i = 0; i < impl->session.GetInputCount(); ++i) {
      std::string name = impl->session.GetInputNameAllocated(i, allocator).get();
      bool is_tensor = false;
      ValueInfo info = describe(name, impl->session.GetInputTypeInfo(i), &is_tensor);
      if (!is_tensor || info.dtype == DType::kUndefined)
        return make_error("{}: input '{}' is not a tensor of a supported type; fetafix feeds tensors only",
                          model_label, name);
      impl->inputs.push_back(std::move(info));
    }
    std::unordered_set<std::string> capture_set(capture_names.begin(), capture_names.end());
    std::vector<ValueInfo> captured;
    std::vector<std::string> rejected;  // explicitly asked for, but not a tensor we can return
    for (size_t i = 0; i < impl->session.GetOutputCount(); ++i) {
      std::string name = impl->session.GetOutputNameAllocated(i, allocator).get();
      bool is_tensor = false;
      ValueInfo info = describe(name, impl->session.GetOutputTypeInfo(i), &is_tensor);
      const bool usable = is_tensor && info.dtype != DType::kUndefined;
      if (!capture_set.count(name)) {
        if (!usable)
          return make_error("{}: output '{}' is not a tensor of a supported type; fetafix compares tensors only",
                            model_label, name);
        impl->outputs.push_back(std::move(info));
      } else if (usable) {
        captured.push_back(std::move(info));
      } else if (!options.capture_all) {
        rejected.push_back(name);
      }  // capture_all: sequences, maps, strings and optionals are skipped; they stay unfetched outputs
    }
    if (!rejected.empty())
      return make_error("{}: cannot capture {}: not a tensor of a supported type", model_label,
                        quoted_list(rejected));
    impl->num_model_outputs = impl->outputs.size();
    // ORT lists outputs in graph order, which is the order the captures were appended in.
    for (auto& c : captured) impl->outputs.push_back(std::move(c));
  } catch (const std::exception& e) {
    return make_error("{}: ONNX Runtime cannot describe the model: {}", model_label, first_line(e.what()));
  }

  for (const auto& v : impl->inputs) impl->input_names.push_back(v.name.c_str());
  for (const auto& v : impl->outputs) impl->output_names.push_back(v.name.c_str());
  if (!impl->inputs.empty() && !impl->inputs[0].shape.empty() && impl->inputs[0].shape[0] > 0)
    impl->fixed_batch = impl->inputs[0].shape[0];
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

Status check_loadable(const onnx::ModelProto& model, const std::string& model_label) {
  FETAFIX_ASSIGN_OR_RETURN(std::string bytes, serialize_deterministic(model, model_label));
  try {
    Ort::SessionOptions ort_options;
    ort_options.SetIntraOpNumThreads(1);
    ort_options.SetInterOpNumThreads(1);
    ort_options.SetGraphOptimizationLevel(ORT_DISABLE_ALL);  // check the model as written, not a rewrite
    Ort::Session session(shared_env(), bytes.data(), bytes.size(), ort_options);
  } catch (const std::exception& e) {
    return make_error("{}: ONNX Runtime cannot load the model: {}", model_label, first_line(e.what()));
  }
  return {};
}

namespace {

// `t` holding `shape` of `dtype`: its own storage when large enough (no allocation, no zeroing:
// the caller overwrites every byte), else a fresh tensor.
void reshape_for_output(Tensor& t, DType dtype, std::vector<int64_t> shape) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (t.dtype == dtype && t.bytes.capacity() >= bytes) {
    t.shape = std::move(shape);
    t.bytes.resize(bytes);
  } else {
    t = Tensor(dtype, std::move(shape));
  }
}

}  // namespace

Status Session::Impl::run_chunk(const std::vector<Tensor>& in, int64_t row_begin, int64_t rows, bool slice,
                                std::vector<Tensor>& out) const {
  try {
    const auto memory = Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeCPU);
    std::vector<Ort::Value> values;
    values.reserve(in.size());
    std::vector<int64_t> shape;
    for (const auto& t : in) {
      shape = t.shape;
      std::byte* data = const_cast<std::byte*>(t.bytes.data());  // ORT only reads inputs
      size_t byte_count = t.bytes.size();
      if (slice) {
        const size_t row_bytes = t.bytes.size() / static_cast<size_t>(t.shape[0]);
        data += row_bytes * static_cast<size_t>(row_begin);
        byte_count = row_bytes * static_cast<size_t>(rows);
        shape[0] = rows;
      }
      values.push_back(Ort::Value::CreateTensor(memory, data, byte_count, shape.data(), shape.size(),
                                                static_cast<ONNXTensorElementDataType>(t.dtype)));
    }
    auto results = session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                               output_names.data(), output_names.size());
    out.resize(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].IsTensor())
        return make_error("{}: output '{}' came back empty or not as a tensor", label, outputs[i].name);
      auto info = results[i].GetTensorTypeAndShapeInfo();
      const int32_t elem = static_cast<int32_t>(info.GetElementType());
      if (!is_supported_dtype(elem))
        return make_error("{}: output '{}' has unsupported element type {}", label, outputs[i].name, elem);
      Tensor& t = out[i];
      reshape_for_output(t, static_cast<DType>(elem), info.GetShape());
      if (!t.bytes.empty()) std::memcpy(t.bytes.data(), results[i].GetTensorRawData(), t.bytes.size());
    }
    return {};
  } catch (const std::exception& e) {
    return make_error("{}: ONNX Runtime failed to run the model: {}", label, first_line(e.what()));
  }
}

Result<std::vector<Tensor>> Session::run(const std::vector<Tensor>& inputs) const {
  std::vector<Tensor> result;
  FETAFIX_TRY_STATUS(run_into(inputs, result));
  return result;
}

Status Session::run_into(const std::vector<Tensor>& inputs, std::vector<Tensor>& result) const {
  const Impl& m = *impl_;
  if (inputs.size() != m.inputs.size())
    return make_error("{}: the model takes {} input(s), got {}", m.label, m.inputs.size(), inputs.size());

  // Chunking applies only when a fixed-batch model gets a different batch size.
  const int64_t n = inputs.empty() || inputs[0].shape.empty() ? -1 : inputs[0].shape[0];
  const bool chunked = m.fixed_batch > 0 && n != m.fixed_batch;
  if (chunked && n <= 0)
    return make_error("{}: input '{}' has an empty batch", m.label, m.inputs[0].name);
  if (chunked && n % m.fixed_batch != 0)
    return make_error("{}: the model has a fixed batch of {}; a batch of {} is not a multiple of it", m.label,
                      m.fixed_batch, n);

  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const ValueInfo& want = m.inputs[i];
    if (t.dtype != want.dtype)
      return make_error("{}: input '{}' must be {}, got {}", m.label, want.name, dtype_name(want.dtype),
                        dtype_name(t.dtype));
    if (chunked && t.shape.empty())
      return make_error("{}: input '{}' has no batch dimension, so the model (fixed batch {}) cannot be run in "
                        "chunks; give a batch of exactly {}", m.label, want.name, m.fixed_batch, m.fixed_batch);
    bool shape_ok = t.shape.size() == want.shape.size();
    for (size_t d = 0; shape_ok && d < t.shape.size(); ++d) {
      if (t.shape[d] < 0) shape_ok = false;
      else if (d == 0 && chunked) shape_ok = t.shape[0] == n;
      else if (want.shape[d] >= 0) shape_ok = t.shape[d] == want.shape[d];
    }
    if (!shape_ok)
      return make_error("{}: input '{}' must have shape {}{}, got {}", m.label, want.name,
                        shape_to_string(want.shape), chunked ? fmt::format(" with batch {}", n) : "",
                        shape_to_string(t.shape));
    const size_t expected_bytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype);
    if (t.bytes.size() != expected_bytes)
      return make_error("{}: input '{}' holds {} bytes, but its shape {} needs {}", m.label, want.name,
                        t.bytes.size(), shape_to_string(t.shape), expected_bytes);
  }

  if (!chunked) {
    FETAFIX_TRY_STATUS(m.run_chunk(inputs, 0, 0, false, result));
  } else {
    const int64_t b = m.fixed_batch, chunks = n / b;
    std::vector<bool> batched;
    for (int64_t c = 0; c < chunks; ++c) {
      std::vector<Tensor> part;
      FETAFIX_TRY_STATUS(m.run_chunk(inputs, c * b, b, true, part));
      if (c == 0) {
        result = std::move(part);
        // A value whose dim 0 is the chunk size is per-image; anything else (shapes,
        // batch-independent constants) is the same for every chunk and kept once.
        for (auto& t : result) {
          batched.push_back(!t.shape.empty() && t.shape[0] == b);
          if (batched.back()) {
            t.bytes.reserve(t.bytes.size() * static_cast<size_t>(chunks));
            t.shape[0] = n;
          }
        }
        continue;
      }
      for (size_t i = 0; i < result.size(); ++i) {
        if (!batched[i]) continue;
        std::vector<int64_t> expected = result[i].shape;
        expected[0] = b;
        if (part[i].shape != expected)
          return make_error("{}: output '{}' has shape {} in one chunk and {} in another", m.label,
                            m.outputs[i].name, shape_to_string(expected), shape_to_string(part[i].shape));
        result[i].bytes.insert(result[i].bytes.end(), part[i].bytes.begin(), part[i].bytes.end());
      }
    }
  }

  std::lock_guard lock(m.observed_mutex);
  if (!m.observed_recorded) {
    for (size_t i = 0; i < result.size(); ++i) m.observed[m.outputs[i].name] = result[i].shape;
    m.observed_recorded = true;
  }
  return {};
}

std::map<std::string, std::vector<int64_t>> Session::observed_shapes() const {
  std::lock_guard lock(impl_->observed_mutex);
  return impl_->observed;
}

Result<std::map<std::string, ValueInfo>> observe_value_shapes(const onnx::ModelProto& model,
                                                               const std::vector<Tensor>& sample_inputs,
                                                               int threads) {
  return observe_value_shapes(model, sample_inputs, threads, "model");
}

Result<std::map<std::string, ValueInfo>> observe_value_shapes(const onnx::ModelProto& model,
                                                               const std::vector<Tensor>& sample_inputs,
                                                               int threads, const std::string& label) {
  SessionOptions options;
  options.threads = threads;
  options.capture_all = true;
  FETAFIX_ASSIGN_OR_RETURN(auto session, Session::create(model, options, label));
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, session->run(sample_inputs));
  std::map<std::string, ValueInfo> values;
  for (size_t i = 0; i < sample_inputs.size(); ++i) {
    const auto& name = session->inputs()[i].name;
    values[name] = ValueInfo{name, sample_inputs[i].dtype, sample_inputs[i].shape};
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& name = session->outputs()[i].name;
    values[name] = ValueInfo{name, outputs[i].dtype, outputs[i].shape};
  }
  return values;
}

std::string runtime_version() { return Ort::GetVersionString(); }

}  // namespace fetafix::runtime
