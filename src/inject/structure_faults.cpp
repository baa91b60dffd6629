// TSS, ID and CG: the graph's shape and structure around otherwise intact layers.
#include <algorithm>
#include <deque>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "inject/injection_context.h"
#include "model/attributes.h"
#include "model/graph.h"
#include "model/weights.h"

namespace fetafix::inject::detail {
namespace {

using nlohmann::json;

bool is_conv(const onnx::NodeProto& n) { return n.domain().empty() && n.op_type() == "Conv"; }

// id:input-size=S or =HxW: the input resized (224 -> 299) and the graph left as it was
// (onnx2tflite #98).
Result<Injected> resize_input(Injection& in) {
  const std::string& value = in.spec().value;
  if (value.empty()) return make_error("'input-size' needs a value, e.g. input-size=299 or input-size=299x320");
  const size_t x = value.find('x');
  FETAFIX_ASSIGN_OR_RETURN(int64_t height, parse_int(value.substr(0, x), "input-size"));
  int64_t width = height;
  if (x != std::string::npos) {
    FETAFIX_ASSIGN_OR_RETURN(width, parse_int(value.substr(x + 1), "input-size"));
  }
  if (height < 1 || width < 1) return make_error("input-size must be positive, not '{}'", value);
  FETAFIX_ASSIGN_OR_RETURN(std::string input, in.first_real_input());
  FETAFIX_ASSIGN_OR_RETURN(auto dims, input_dims(in.graph(), input));
  if (dims.size() != 4) return make_error("input '{}' has rank {}, not an image batch of rank 4", input, dims.size());
  size_t h = 0;
  if (dims[1] == 3 || dims[1] == 1) h = 2;        // NCHW
  else if (dims[3] == 3 || dims[3] == 1) h = 1;   // NHWC
  else return make_error("input '{}' {} has no channel dim of 1 or 3 at position 1 or 3", input, shape_to_string(dims));
  auto resized = dims;
  resized[h] = height;
  resized[h + 1] = width;
  if (resized == dims) return make_error("input '{}' is already {}", input, shape_to_string(dims));
  FETAFIX_ASSIGN_OR_RETURN(model::Edit edit, model::set_graph_input_shape(in.model(), input, resized));
  FETAFIX_TRY_STATUS(in.apply(edit));
  Injected out;
  out.values = {input};
  out.details = {{"input", input}, {"old_shape", dims}, {"new_shape", resized}};
  out.description = fmt::format("input '{}' resized from {} to {}, the graph left as it was", input,
                                shape_to_string(dims), shape_to_string(resized));
  return out;
}

// cg:extra-output[=VALUE]: an intermediate value exposed as an extra graph output
// (onnx2tflite #98). Default: the value feeding the node that makes the first output.
Result<Injected> extra_output(Injection& in) {
  std::string value = in.spec().value;
  const auto& g = in.graph();
  if (value.empty()) {
    const auto& first = g.output(0).name();
    for (const auto& n : g.node())
      if (std::find(n.output().begin(), n.output().end(), first) != n.output().end() && n.input_size() > 0)
        value = n.input(0);
    if (value.empty() || model::is_weight(in.model(), value))
      return make_error("cannot pick a default value for the extra output; name one: extra-output=VALUE");
  }
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(g));
  DType dtype = view.dtype(value);
  if (dtype == DType::kUndefined) dtype = DType::kFloat32;
  FETAFIX_TRY_STATUS(in.apply(model::Edit::add_graph_output(float_value_info(value, dtype))));
  Injected out;
  out.values = {value};
  out.description = fmt::format("'{}' added as an extra graph output", value);
  return out;
}

// cg:add-pad[:pads=K]: a zero Pad of K on every spatial side inserted before a Conv.
Result<Injected> add_pad(Injection& in) {
  int64_t amount = 1;
  if (auto it = in.spec().options.find("pads"); it != in.spec().options.end()) {
    FETAFIX_ASSIGN_OR_RETURN(amount, parse_int(it->second, "pads"));
  }
  if (amount < 1) return make_error("pads must be at least 1");
  auto eligible = [&](const onnx::NodeProto& n) {
    return is_conv(n) && spatial_rank(in.model(), n) > 0 && !model::is_weight(in.model(), n.input(0));
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible, "Conv", DefaultNodes::kFirst));
  Injected out;
  for (const auto& h : handles) {
    const auto rank = static_cast<size_t>(spatial_rank(in.model(), in.node(h)));
    std::vector<int64_t> pads(2 * (rank + 2), amount);  // ONNX Pad: all begins, then all ends
    pads[0] = pads[1] = pads[rank + 2] = pads[rank + 3] = 0;  // batch and channel unpadded
    const std::string conv = in.node_name(h);
    const std::string x = in.node(h).input(0);
    const std::string pad_name = in.fresh_name(conv + "_injected_pad");
    const std::string padded = in.fresh_name(conv + "_injected_padded");
    onnx::NodeProto pad;
    if (in.opset() >= 11) {
      const std::string pads_value = in.fresh_name(conv + "_injected_pads");
      FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(pads_value, int64_tensor({static_cast<int64_t>(pads.size())}, pads))));
      pad = make_node("Pad", pad_name, {x, pads_value}, {padded});
      out.values.push_back(pads_value);
    } else {
      pad = make_node("Pad", pad_name, {x}, {padded}, {Attr::ints("pads", pads).proto});
    }
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(pad, static_cast<int64_t>(*in.node_index(h)))));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_node_input(conv, 0, padded)));
    out.node_handles.push_back(padded);
    out.node_handles.push_back(h);
  }
  out.description = fmt::format("a zero Pad of {} on each spatial side inserted before {} Conv node(s)", amount,
                                handles.size());
  return out;
}

// cg:transpose-pair: NCHW -> NHWC -> NCHW Transposes after a Conv, as NHWC converters leave
// around layers. It computes the same; it is a CG difference a comparison must see through.
Result<Injected> transpose_pair(Injection& in) {
  auto eligible = [&](const onnx::NodeProto& n) { return is_conv(n) && spatial_rank(in.model(), n) == 2; };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible, "2-D Conv", DefaultNodes::kFirst));
  Injected out;
  for (const auto& h : handles) {
    const std::string conv = in.node_name(h);
    const auto position = static_cast<int64_t>(*in.node_index(h)) + 1;
    const std::string nhwc = in.fresh_name(h + "_injected_nhwc");
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
        make_node("Transpose", in.fresh_name(conv + "_injected_to_nhwc"), {h}, {nhwc}, {Attr::ints("perm", {0, 2, 3, 1}).proto}),
        position)));
    const std::string nchw = in.fresh_name(h + "_injected_nchw");
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
        make_node("Transpose", in.fresh_name(conv + "_injected_to_nchw"), {nhwc}, {nchw}, {Attr::ints("perm", {0, 3, 1, 2}).proto}),
        position + 1)));
    FETAFIX_TRY_STATUS(in.redirect_uses(h, nchw, nhwc, out));
    out.node_handles.insert(out.node_handles.end(), {nhwc, nchw});
  }
  out.description = fmt::format("a redundant Transpose pair inserted after {} Conv node(s)", handles.size());
  return out;
}

}  // namespace

Result<std::vector<int64_t>> input_dims(const onnx::GraphProto& graph, const std::string& input) {
  for (const auto& vi : graph.input()) {
    if (vi.name() != input) continue;
    if (!vi.type().has_tensor_type() || !vi.type().tensor_type().has_shape())
      return make_error("input '{}' declares no tensor shape", input);
    std::vector<int64_t> dims;
    for (const auto& d : vi.type().tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    return dims;
  }
  return make_error("no graph input named '{}'", input);
}

Result<std::string> input_layout(const std::vector<int64_t>& dims, const std::string& input) {
  if (dims.size() != 4) return make_error("input '{}' has rank {}, not an image batch of rank 4", input, dims.size());
  if (dims[1] == 3 || dims[1] == 1) return std::string("NCHW");
  if (dims[3] == 3 || dims[3] == 1) return std::string("NHWC");
  return make_error("input '{}' {} has no channel dim of 1 or 3 at position 1 or 3", input, shape_to_string(dims));
}

Result<Injected> flip_input_layout(Injection& in, const std::vector<int64_t>& perm) {
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != std::vector<int64_t>{0, 1, 2, 3})
    return make_error("perm must be a permutation of 0,1,2,3, not {}", fmt::join(perm, ","));
  FETAFIX_ASSIGN_OR_RETURN(std::string input, in.first_real_input());
  FETAFIX_ASSIGN_OR_RETURN(auto dims, input_dims(in.graph(), input));
  FETAFIX_ASSIGN_OR_RETURN(const std::string layout, input_layout(dims, input));
  const bool was_nchw = layout == "NCHW";
  const std::vector<int64_t> flipped = was_nchw ? std::vector<int64_t>{dims[0], dims[2], dims[3], dims[1]}
                                                : std::vector<int64_t>{dims[0], dims[3], dims[1], dims[2]};
  Injected out;
  const std::string suffix = was_nchw ? "nchw" : "nhwc";  // what the Transpose is meant to give back
  const std::string transposed = in.fresh_name(input + "_" + suffix);
  const std::string transpose = in.fresh_name(input + "_to_" + suffix);
  FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
      make_node("Transpose", transpose, {input}, {transposed}, {Attr::ints("perm", perm).proto}), 0)));
  FETAFIX_TRY_STATUS(in.redirect_uses(input, transposed, transposed, out));
  FETAFIX_ASSIGN_OR_RETURN(model::Edit reshape, model::set_graph_input_shape(in.model(), input, flipped));
  FETAFIX_TRY_STATUS(in.apply(reshape));
  out.node_handles.insert(out.node_handles.begin(), transposed);
  out.values = {input};
  out.details = {{"input", input},       {"old_shape", dims},         {"new_shape", flipped},
                 {"old_layout", layout}, {"new_layout", was_nchw ? "NHWC" : "NCHW"}, {"perm", perm}};
  out.description = fmt::format("input '{}' made {} {} with Transpose perm [{}] after it", input,
                                was_nchw ? "NHWC" : "NCHW", shape_to_string(flipped), fmt::join(perm, ","));
  return out;
}

// Ops that read axis 1 as channels and the axes after it as space: the first of them fixes the
// layout the network was trained on (the same list as localize's TSS check).
bool layout_sensitive(const onnx::NodeProto& n) {
  static const std::set<std::string> kOps{"Conv",          "ConvTranspose",  "ConvInteger",  "QLinearConv",
                                          "MaxPool",       "AveragePool",    "LpPool",       "GlobalAveragePool",
                                          "GlobalMaxPool", "GlobalLpPool",   "BatchNormalization",
                                          "InstanceNormalization", "LRN",    "SpaceToDepth", "DepthToSpace"};
  return n.domain().empty() && kOps.count(n.op_type()) > 0;
}

// Ops whose attribute or input names axes of their data input.
bool takes_axes(const onnx::NodeProto& n) {
  static const std::set<std::string> kOps{"Gather", "Unsqueeze", "Squeeze", "Concat", "Split", "Slice"};
  return n.domain().empty() && kOps.count(n.op_type()) > 0;
}

// The axes a node names as written: its axis/axes attribute, else its constant axes input.
std::pair<std::string, nlohmann::json> written_axes(const onnx::ModelProto& model, const onnx::NodeProto& n) {
  if (model::find_attribute(n, "axis")) return {"axis", *model::get_int_or(n, "axis", 0)};
  if (auto axes = model::get_ints(n, "axes"); axes.ok()) return {"axes", *axes};
  const int slot = n.op_type() == "Slice" ? 3 : 1;
  if (n.op_type() != "Gather" && n.op_type() != "Concat" && n.op_type() != "Split" && n.input_size() > slot &&
      model::is_weight(model, n.input(slot)))
    if (auto t = model::get_weight(model, n.input(slot)); t.ok() && t->dtype == DType::kInt64) {
      std::vector<int64_t> v(t->span<int64_t>().begin(), t->span<int64_t>().end());
      return {"axes", v};
    }
  return {n.op_type() == "Gather" || n.op_type() == "Split" ? "axis" : "axes",
          n.op_type() == "Gather" || n.op_type() == "Split" ? nlohmann::json(0) : nlohmann::json(nullptr)};
}

// tss:gather-axis: an NCHW input made NHWC, and the Transpose back to NCHW placed where the
// nodes working on the input's axes (InceptionV3's per-channel Gather/Unsqueeze/Mul/Add/Concat)
// meet the first layer, as converters that push the layout Transpose down the graph do; but
// those nodes keep the axes they had for NCHW (onnxmltools #719): a Gather on the channel axis
// now gathers rows.
Result<Injected> stale_axes_after_input(Injection& in) {
  FETAFIX_ASSIGN_OR_RETURN(std::string input, in.first_real_input());
  FETAFIX_ASSIGN_OR_RETURN(auto dims, input_dims(in.graph(), input));
  FETAFIX_ASSIGN_OR_RETURN(const std::string layout, input_layout(dims, input));
  if (layout != "NCHW")
    return make_error("input '{}' {} is not NCHW (the fault makes an NCHW input NHWC)", input, shape_to_string(dims));
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(in.graph()));

  // The nodes computed from the input before its first layout-sensitive layer.
  std::set<std::string> from_input{input};
  std::set<size_t> reached;
  std::optional<size_t> first_layer;
  for (size_t i : view.topological_order()) {
    const auto& n = view.node(i);
    if (std::none_of(n.input().begin(), n.input().end(), [&](const std::string& v) { return from_input.count(v) > 0; }))
      continue;
    if (layout_sensitive(n) && n.input_size() > 0 && from_input.count(n.input(0))) {
      first_layer = i;
      break;
    }
    reached.insert(i);
    for (const auto& o : n.output()) from_input.insert(o);
  }
  if (!first_layer) return make_error("no Conv, pooling or normalization layer reads input '{}'", input);
  const std::string layer_name = view.node_name(*first_layer);
  if (view.node(*first_layer).input(0) == input)
    return make_error("input '{}' feeds '{}' directly: no node works on its axes (use tss:input-transpose)", input,
                      layer_name);
  auto reached_ancestors = [&](size_t node) {
    std::set<size_t> found;
    std::deque<size_t> todo{node};
    while (!todo.empty()) {
      const size_t n = todo.front();
      todo.pop_front();
      for (size_t p : view.node_predecessors(n))
        if (reached.count(p) && found.insert(p).second) todo.push_back(p);
    }
    return found;
  };
  // The nodes on the input's axes before the first layer; the Transpose goes after the last of
  // them (what follows it, a Pad say, keeps working on NCHW).
  std::optional<size_t> last_axis_node;
  const std::set<size_t> before_layer = reached_ancestors(*first_layer);
  for (size_t i : view.topological_order())
    if (before_layer.count(i) && takes_axes(view.node(i))) last_axis_node = i;
  if (!last_axis_node)
    return make_error("no Gather/Unsqueeze/Squeeze/Concat/Split/Slice works on input '{}' before '{}'", input,
                      layer_name);
  std::set<size_t> block = reached_ancestors(*last_axis_node);
  block.insert(*last_axis_node);
  const std::string boundary = view.node(*last_axis_node).output(0);
  std::vector<size_t> axis_nodes;
  for (size_t i : block)
    if (takes_axes(view.node(i))) axis_nodes.push_back(i);
  // The input and what the block computes may leave the block only through `boundary`.
  for (const auto& use : view.consumers(input))
    if (!block.count(use.node))
      return make_error("input '{}' also feeds '{}', besides its Gather/Unsqueeze/... block", input,
                        view.node_name(use.node));
  std::optional<size_t> first_use;
  for (size_t b : block)
    for (const auto& o : view.node(b).output()) {
      for (const auto& use : view.consumers(o)) {
        if (block.count(use.node)) continue;
        if (o != boundary)
          return make_error("'{}' (computed from input '{}') also feeds '{}', not only '{}'", o, input,
                            view.node_name(use.node), view.node_name(*last_axis_node));
        if (!first_use || use.node < *first_use) first_use = use.node;
      }
      if (view.is_graph_output(o)) return make_error("'{}' (computed from input '{}') is a graph output", o, input);
    }
  if (!first_use) return make_error("nothing reads '{}'", boundary);

  Injected out;
  nlohmann::json stale = nlohmann::json::array();
  std::sort(axis_nodes.begin(), axis_nodes.end());
  for (size_t i : axis_nodes) {
    const auto [attribute, value] = written_axes(in.model(), view.node(i));
    stale.push_back({{"node", view.node_name(i)}, {"op", view.node(i).op_type()}, {"attribute", attribute},
                     {"value", value}});
  }
  const std::string first_use_handle = Injection::handle_of(view.node(*first_use));
  const std::vector<int64_t> nhwc{dims[0], dims[2], dims[3], dims[1]};
  const std::string transposed = in.fresh_name(boundary + "_nchw");
  FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
      make_node("Transpose", in.fresh_name(view.node_name(*last_axis_node) + "_to_nchw"), {boundary}, {transposed},
                {Attr::ints("perm", {0, 3, 1, 2}).proto}),
      static_cast<int64_t>(*in.node_index(first_use_handle)))));
  FETAFIX_TRY_STATUS(in.redirect_uses(boundary, transposed, transposed, out));
  FETAFIX_ASSIGN_OR_RETURN(model::Edit reshape, model::set_graph_input_shape(in.model(), input, nhwc));
  FETAFIX_TRY_STATUS(in.apply(reshape));
  out.node_handles.insert(out.node_handles.begin(), transposed);
  out.values = {input};
  out.details = {{"input", input},
                 {"old_shape", dims},
                 {"new_shape", nhwc},
                 {"transpose_after", view.node_name(*last_axis_node)},
                 {"first_layer", layer_name},
                 {"perm", {0, 3, 1, 2}},
                 {"stale_axis_nodes", stale}};
  out.description = fmt::format(
      "input '{}' made NHWC {} with Transpose [0,3,1,2] after '{}'; the {} node(s) on the input's axes up to it keep "
      "their NCHW axes",
      input, shape_to_string(nhwc), view.node_name(*last_axis_node), axis_nodes.size());
  return out;
}

Result<Injected> inject_structure(Injection& in) {
  const auto& spec = in.spec();
  if (spec.type == FaultType::kTSS && spec.fault == "input-transpose") {
    if (spec.value.empty()) return make_error("'input-transpose' needs a perm, e.g. input-transpose=0,3,2,1");
    FETAFIX_ASSIGN_OR_RETURN(auto perm, parse_ints(spec.value, "input-transpose"));
    FETAFIX_ASSIGN_OR_RETURN(std::string input, in.first_real_input());
    FETAFIX_ASSIGN_OR_RETURN(auto dims, input_dims(in.graph(), input));
    FETAFIX_ASSIGN_OR_RETURN(const std::string layout, input_layout(dims, input));
    if (layout == "NCHW" && perm == std::vector<int64_t>{0, 3, 1, 2})
      return make_error("perm 0,3,1,2 is the faithful NHWC rewrite, not a fault (use benign:nhwc)");
    if (layout == "NHWC" && perm == std::vector<int64_t>{0, 2, 3, 1})
      return make_error("perm 0,2,3,1 is the faithful rewrite of an NHWC input as NCHW, not a fault");
    return flip_input_layout(in, perm);
  }
  if (spec.type == FaultType::kTSS && spec.fault == "gather-axis") {
    if (!spec.value.empty()) return make_error("'gather-axis' takes no value");
    return stale_axes_after_input(in);
  }
  if (spec.type == FaultType::kID && spec.fault == "input-size") return resize_input(in);
  if (spec.type == FaultType::kCG && spec.fault == "extra-output") return extra_output(in);
  if (spec.type == FaultType::kCG && spec.fault == "add-pad") return add_pad(in);
  if (spec.type == FaultType::kCG && spec.fault == "transpose-pair") {
    if (!spec.value.empty()) return make_error("'transpose-pair' takes no value");
    return transpose_pair(in);
  }
  return make_error("fault '{}' is not supported yet", spec.text);
}

}  // namespace fetafix::inject::detail
