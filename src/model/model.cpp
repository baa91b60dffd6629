#include "model/model.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <functional>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/fs.h"

namespace fetafix::model {
namespace fs = std::filesystem;
namespace pbio = google::protobuf::io;

namespace {

// Calls `visit` on every tensor of a graph, subgraphs (If/Loop/Scan bodies) included.
Status for_each_tensor(onnx::GraphProto& graph, const std::function<Status(onnx::TensorProto&)>& visit);

Status for_each_tensor_in_attribute(onnx::AttributeProto& attr,
                                    const std::function<Status(onnx::TensorProto&)>& visit) {
  if (attr.has_t()) FETAFIX_TRY_STATUS(visit(*attr.mutable_t()));
  for (auto& t : *attr.mutable_tensors()) FETAFIX_TRY_STATUS(visit(t));
  if (attr.has_sparse_tensor()) {
    FETAFIX_TRY_STATUS(visit(*attr.mutable_sparse_tensor()->mutable_values()));
    FETAFIX_TRY_STATUS(visit(*attr.mutable_sparse_tensor()->mutable_indices()));
  }
  if (attr.has_g()) FETAFIX_TRY_STATUS(for_each_tensor(*attr.mutable_g(), visit));
  for (auto& g : *attr.mutable_graphs()) FETAFIX_TRY_STATUS(for_each_tensor(g, visit));
  return {};
}

Status for_each_tensor(onnx::GraphProto& graph, const std::function<Status(onnx::TensorProto&)>& visit) {
  for (auto& t : *graph.mutable_initializer()) FETAFIX_TRY_STATUS(visit(t));
  for (auto& s : *graph.mutable_sparse_initializer()) {
    FETAFIX_TRY_STATUS(visit(*s.mutable_values()));
    FETAFIX_TRY_STATUS(visit(*s.mutable_indices()));
  }
  for (auto& node : *graph.mutable_node())
    for (auto& attr : *node.mutable_attribute()) FETAFIX_TRY_STATUS(for_each_tensor_in_attribute(attr, visit));
  return {};
}

bool is_external(const onnx::TensorProto& t) {
  return t.data_location() == onnx::TensorProto::EXTERNAL;
}

std::string tensor_label(const onnx::TensorProto& t) {
  return t.name().empty() ? std::string("(unnamed tensor)") : "tensor '" + t.name() + "'";
}

Result<uint64_t> parse_decimal(const std::string& label, const std::string& key, const std::string& text) {
  if (text.empty() || text.size() > 19) return make_error("{}: external data {} '{}' is not a number", label, key, text);
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return make_error("{}: external data {} '{}' is not a number", label, key, text);
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// A path relative to `base` that stays inside it (no "..", not absolute).
bool lexically_inside(const fs::path& base, const fs::path& candidate) {
  fs::path rel = candidate.lexically_normal().lexically_relative(base.lexically_normal());
  if (rel.empty() || rel == ".") return false;
  return *rel.begin() != "..";
}

// Reads one external-data tensor into raw_data. Only files inside `model_dir` are read, so a
// model cannot make fetafix read (and later write into a repaired model) an arbitrary file.
Status load_external_tensor(onnx::TensorProto& t, const fs::path& model_file, const fs::path& model_dir) {
  const std::string file_label = model_file.string();
  const std::string label = file_label + ": " + tensor_label(t);
  std::string location, offset_text, length_text;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset_text = kv.value();
    else if (kv.key() == "length") length_text = kv.value();
  }
  if (location.empty()) return make_error("{}: external data has no location", label);
  const fs::path loc(location);
  if (loc.is_absolute() || location.front() == '/' || loc.has_root_name())
    return make_error("{}: external data location '{}' is absolute; only files in the model's folder are read", label,
                      location);
  const fs::path dir = model_dir.empty() ? fs::path(".") : model_dir;
  const fs::path full = dir / loc;
  if (!lexically_inside(dir, full))
    return make_error("{}: external data location '{}' is outside the model's folder", label, location);

  std::error_code ec;
  if (!fs::exists(fs::symlink_status(full, ec)))
    return make_error("{}: external data file '{}' not found", label, location);
  const fs::path canon_dir = fs::canonical(dir, ec);
  if (ec) return make_error("{}: cannot resolve the model's folder: {}", label, ec.message());
  const fs::path canon_file = fs::canonical(full, ec);
  if (ec) return make_error("{}: external data file '{}' not found", label, location);
  if (!lexically_inside(canon_dir, canon_file))
    return make_error("{}: external data location '{}' resolves outside the model's folder", label, location);
  if (!fs::is_regular_file(canon_file, ec))
    return make_error("{}: external data location '{}' is not a regular file", label, location);

  const uint64_t file_size = fs::file_size(canon_file, ec);
  if (ec) return make_error("{}: cannot read external data file '{}': {}", label, location, ec.message());
  uint64_t offset = 0, length = 0;
  if (!offset_text.empty()) {
    FETAFIX_ASSIGN_OR_RETURN(offset, parse_decimal(label, "offset", offset_text));
  }
  if (offset > file_size)
    return make_error("{}: external data offset {} is past the end of '{}' ({} bytes)", label, offset, location, file_size);
  if (!length_text.empty()) {
    FETAFIX_ASSIGN_OR_RETURN(length, parse_decimal(label, "length", length_text));
  } else {
    length = file_size - offset;
  }
  if (length > file_size - offset)
    return make_error("{}: external data [{}, +{}) runs past the end of '{}' ({} bytes)", label, offset, length,
                      location, file_size);
  if (length > static_cast<uint64_t>(INT_MAX))
    return make_error("{}: external data of {} bytes is over the 2 GB limit", label, length);

  std::ifstream in(canon_file, std::ios::binary);
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(length));
  if (!in) return make_error("{}: cannot read external data file '{}'", label, location);

  t.clear_external_data();
  t.clear_data_location();
  t.set_raw_data(std::move(bytes));
  return {};
}

Result<Model> parse_stream(pbio::ZeroCopyInputStream& stream, const std::string& label) {
  Model model;
  pbio::CodedInputStream coded(&stream);
  coded.SetTotalBytesLimit(INT_MAX);
  if (!model.proto.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
    return make_error("{}: not an ONNX model (not a valid protobuf)", label);
  if (!model.proto.has_graph()) return make_error("{}: not an ONNX model (no graph)", label);
  return model;
}

}  // namespace

Result<Model> parse_model(std::string_view bytes, const std::string& label) {
  if (bytes.empty()) return make_error("{}: empty model", label);
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return make_error("{}: model over protobuf's 2 GB limit", label);
  pbio::ArrayInputStream stream(bytes.data(), static_cast<int>(bytes.size()));
  FETAFIX_ASSIGN_OR_RETURN(Model model, parse_stream(stream, label));
  FETAFIX_TRY_STATUS(for_each_tensor(*model.proto.mutable_graph(), [&](onnx::TensorProto& t) -> Status {
    if (is_external(t))
      return make_error("{}: {} uses external data, which can only be read from a model file", label, tensor_label(t));
    return {};
  }));
  FETAFIX_TRY_STATUS(check_model_structure(model.proto, label));
  return model;
}

Result<Model> load_model(const fs::path& path) {
  const std::string label = path.string();
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) return make_error("{}: file not found", label);
  if (fs::is_directory(status)) return make_error("{}: is a folder, not an ONNX file", label);
  if (!fs::is_regular_file(status)) return make_error("{}: is a device, FIFO or socket, not an ONNX file", label);
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return make_error("{}: cannot read: {}", label, ec.message());
  if (size == 0) return make_error("{}: empty file", label);
  if (size > static_cast<uint64_t>(INT_MAX)) return make_error("{}: file over protobuf's 2 GB limit", label);

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("{}: cannot read: {}", label, std::strerror(errno));
  Result<Model> parsed = [&]() -> Result<Model> {
    pbio::FileInputStream stream(fd);
    auto result = parse_stream(stream, label);
    if (stream.GetErrno() != 0) return make_error("{}: cannot read: {}", label, std::strerror(stream.GetErrno()));
    return result;
  }();
  ::close(fd);
  if (!parsed.ok()) return parsed.error();

  Model model = std::move(parsed).value();
  model.path = path;
  const fs::path dir = path.parent_path();
  FETAFIX_TRY_STATUS(for_each_tensor(*model.proto.mutable_graph(), [&](onnx::TensorProto& t) -> Status {
    return is_external(t) ? load_external_tensor(t, path, dir) : Status{};
  }));
  FETAFIX_TRY_STATUS(check_model_structure(model.proto, label));
  return model;
}

std::string serialize_model(const onnx::ModelProto& model) {
  std::string out;
  if (model.ByteSizeLong() > static_cast<size_t>(INT_MAX)) return out;
  {
    pbio::StringOutputStream stream(&out);
    pbio::CodedOutputStream coded(&stream);
    // Map fields and unknown fields are the only sources of order variation; pin them.
    coded.SetSerializationDeterministic(true);
    if (!model.SerializeToCodedStream(&coded)) out.clear();
  }
  return out;
}

Status save_model(const onnx::ModelProto& model, const fs::path& path, const std::vector<fs::path>& never_overwrite) {
  for (const auto& input : never_overwrite)
    if (!input.empty() && same_file(path, input))
      return make_error("{}: refusing to overwrite an input ({})", path.string(), input.string());
  if (model.ByteSizeLong() > static_cast<size_t>(INT_MAX))
    return make_error("{}: model is over protobuf's 2 GB limit and cannot be saved as one file", path.string());
  const std::string bytes = serialize_model(model);
  if (bytes.empty() && model.ByteSizeLong() != 0) return make_error("{}: cannot serialize the model", path.string());
  return write_file_atomic(path, bytes);
}

}  // namespace fetafix::model
