// ID: the declared shape of the image input, compared by logical axis (paper §4.1.2). A
// Target that fixes another size, or fixes what the Source leaves dynamic, is a finding; its
// repair declares the Source's dims. A dynamic dim on one side where the data has the other
// side's fixed size is only a note (verdict kNote): both models run the same on the data.
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "localize/checks/check.h"
#include "localize/input_checks.h"
#include "model/graph.h"

namespace fetafix::localize {
using nlohmann::json;

namespace {

struct DeclaredInput {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;
  std::vector<DeclaredDim> dims;
};

Result<DeclaredInput> image_input(const onnx::ModelProto& model, const std::string& label) {
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(model.graph()));
  if (view.real_inputs().empty()) return make_error("{}: the graph has no input to feed", label);
  const std::string& name = view.real_inputs().front();
  DeclaredInput in;
  in.name = name;
  for (const auto& vi : model.graph().input()) {
    if (vi.name() != name) continue;
    if (!vi.type().has_tensor_type()) return make_error("{}: input '{}' is not a tensor", label, name);
    const auto& tt = vi.type().tensor_type();
    in.dtype = static_cast<DType>(tt.elem_type());
    in.has_shape = tt.has_shape();
    for (const auto& d : tt.shape().dim()) {
      DeclaredDim dim;
      if (d.has_dim_value() && d.dim_value() > 0) {
        dim.fixed = true;
        dim.value = d.dim_value();
      } else if (d.has_dim_param()) {
        dim.param = d.dim_param();
      }
      in.dims.push_back(std::move(dim));
    }
  }
  return in;
}

// The input's layout from its fixed dims; nullopt when it does not look like an image.
std::optional<data::Layout> guess_layout(const DeclaredInput& in) {
  if (in.dims.size() != 4) return std::nullopt;
  auto is3 = [&](size_t i) { return in.dims[i].fixed && in.dims[i].value == 3; };
  if (is3(1)) return data::Layout::kNCHW;
  if (is3(3)) return data::Layout::kNHWC;
  return std::nullopt;
}

// Logical axis name at each position.
std::vector<std::string> axis_names(size_t rank, std::optional<data::Layout> layout) {
  if (layout == data::Layout::kNCHW) return {"N", "C", "H", "W"};
  if (layout == data::Layout::kNHWC) return {"N", "H", "W", "C"};
  std::vector<std::string> names;
  for (size_t i = 0; i < rank; ++i) names.push_back(fmt::format("d{}", i));
  return names;
}

std::string dims_text(const DeclaredInput& in) {
  if (!in.has_shape) return "unknown";
  std::string s = "[";
  for (size_t i = 0; i < in.dims.size(); ++i)
    s += (i ? "," : "") + (in.dims[i].fixed ? std::to_string(in.dims[i].value)
                                              : (in.dims[i].param.empty() ? std::string("?") : in.dims[i].param));
  return s + "]";
}

std::string layout_text(std::optional<data::Layout> l) {
  if (!l) return "unknown";
  return *l == data::Layout::kNCHW ? "NCHW" : "NHWC";
}


}  // namespace

Result<std::vector<Finding>> check_input_dimensions(const onnx::ModelProto& source, const onnx::ModelProto& target) {
  FETAFIX_ASSIGN_OR_RETURN(const DeclaredInput src, image_input(source, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(const DeclaredInput tgt, image_input(target, "Target"));
  if (!src.has_shape || !tgt.has_shape) return std::vector<Finding>{};  // nothing declared to compare

  std::optional<data::Layout> src_layout = guess_layout(src), tgt_layout = guess_layout(tgt);
  if (!src_layout || !tgt_layout) src_layout = tgt_layout = std::nullopt;  // compare position by position
  InputDimensionsEvidence e;
  std::vector<std::string> described;
  e.rank_differs = src.dims.size() != tgt.dims.size();
  if (!e.rank_differs) {
    const auto src_axes = axis_names(src.dims.size(), src_layout);
    const auto tgt_axes = axis_names(tgt.dims.size(), tgt_layout);
    e.target_shape_expected.emplace();  // the Source's dims placed in the Target's layout
    for (size_t tp = 0; tp < tgt.dims.size(); ++tp) {
      const std::string& axis = tgt_axes[tp];
      const size_t sp = static_cast<size_t>(std::find(src_axes.begin(), src_axes.end(), axis) - src_axes.begin());
      const DeclaredDim& s = src.dims[sp];
      const DeclaredDim& t = tgt.dims[tp];
      e.target_shape_expected->push_back(s);
      std::string kind;
      if (s.fixed && t.fixed && s.value != t.value) kind = "size";
      else if (!s.fixed && t.fixed) kind = "dynamic_in_source_fixed_in_target";
      else if (s.fixed && !t.fixed) kind = "fixed_in_source_dynamic_in_target";
      if (kind.empty()) continue;
      e.differences.push_back({axis, sp, tp, s, t, kind});
      described.push_back(fmt::format("{} {} vs {}", axis, s.to_json().dump(), t.to_json().dump()));
    }
    if (e.differences.empty()) return std::vector<Finding>{};
  }
  std::string detail;
  for (const auto& d : described) detail += (detail.empty() ? "" : ", ") + d;
  std::string summary =
      e.rank_differs ? fmt::format("input '{}' has rank {} {} in Source, rank {} {} in Target", src.name,
                                   src.dims.size(), dims_text(src), tgt.dims.size(), dims_text(tgt))
                     : fmt::format("input {} in Source, {} in Target: {}", dims_text(src), dims_text(tgt), detail);
  e.source_input = src.name;
  e.target_input = tgt.name;
  e.source_shape = src.dims;
  e.target_shape = tgt.dims;
  e.source_layout = layout_text(src_layout);
  e.target_layout = layout_text(tgt_layout);
  e.source_dtype = std::string(dtype_name(src.dtype));
  e.target_dtype = std::string(dtype_name(tgt.dtype));
  return std::vector<Finding>{make_finding(std::move(e), "", "", std::move(summary))};
}

json DeclaredDim::to_json() const { return fixed ? json(value) : (param.empty() ? json("?") : json(param)); }

namespace {
json dims_json(const std::vector<DeclaredDim>& dims) {
  json a = json::array();
  for (const auto& d : dims) a.push_back(d.to_json());
  return a;
}
}  // namespace

json InputDimensionsEvidence::to_json() const {
  json diffs = json::array();
  for (const auto& d : differences)
    diffs.push_back({{"axis", d.axis},
                     {"source_position", d.source_position},
                     {"target_position", d.target_position},
                     {"source", d.source.to_json()},
                     {"target", d.target.to_json()},
                     {"kind", d.kind}});
  return json{{"source_input", source_input},
              {"target_input", target_input},
              {"source_shape", dims_json(source_shape)},
              {"target_shape", dims_json(target_shape)},
              {"source_layout", source_layout},
              {"target_layout", target_layout},
              {"source_dtype", source_dtype},
              {"target_dtype", target_dtype},
              {"rank_differs", rank_differs},
              {"differences", std::move(diffs)},
              {"target_shape_expected", target_shape_expected ? dims_json(*target_shape_expected) : json(nullptr)}};
}

namespace {

// The data's size on a logical axis as each model is fed it; nullopt for the batch axis (any
// batch fits: images are fed one by one or in batches the model accepts) and unknown axes.
std::optional<int64_t> data_size(const std::string& axis, const data::Preset& preset) {
  if (axis == "C") return 3;
  if (axis == "H") return preset.height;
  if (axis == "W") return preset.width;
  return std::nullopt;
}

// A dim dynamic on one side and fixed on the other, where the data the detection run fed both
// models has the fixed size, computes the same on these samples: a note, not an ID fault.
bool data_fits_both(const InputDimensionsEvidence& e, const DetectionView& view) {
  if (e.rank_differs || e.differences.empty()) return false;
  for (const auto& d : e.differences) {
    if (d.kind == "size") return false;
    if (d.axis == "N") continue;
    const int64_t fixed = d.source.fixed ? d.source.value : d.target.value;
    const auto s = data_size(d.axis, view.source_preset), t = data_size(d.axis, view.target_preset);
    if (!s || !t || *s != fixed || *t != fixed) return false;
  }
  return true;
}

}  // namespace

Result<std::vector<Finding>> InputDimensionsEvidence::run(const CheckContext& c) {
  FETAFIX_ASSIGN_OR_RETURN(auto found, check_input_dimensions(*c.source.model, *c.target.model));
  for (auto& f : found)
    if (data_fits_both(std::get<InputDimensionsEvidence>(f.evidence), c.detection)) f.verdict = Verdict::kNote;
  return found;
}

}  // namespace fetafix::localize
