#include "localize/local_replay.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "localize/activation_io.h"
#include "model/region.h"
#include "runtime/session.h"

namespace fetafix::localize {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kInf = std::numeric_limits<double>::infinity();

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// IEEE binary16 from float, rounding to nearest even (overflow to infinity, NaN kept).
uint16_t float_to_half(float f) {
  uint32_t x = 0;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past the largest half
  if (abs < 0x38800000u) {  // a subnormal half (or zero): mantissa * 2^-24
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t full = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - (abs >> 23);  // 14..24
    uint32_t half = full >> shift;
    const uint32_t rest = full & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((abs - 0x38000000u) >> 13);
  const uint32_t rest = abs & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

bool is_float_type(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kFloat64; }

void store_as(DType dtype, float value, std::byte* out) {
  switch (dtype) {
    case DType::kFloat32: std::memcpy(out, &value, 4); break;
    case DType::kFloat64: {
      const double d = value;
      std::memcpy(out, &d, 8);
      break;
    }
    case DType::kFloat16: {
      const uint16_t h = float_to_half(value);
      std::memcpy(out, &h, 2);
      break;
    }
    default: break;  // screened by is_float_type
  }
}

struct Observed {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;  // batch dim 1
};

// A region's plan once the probes have shown the shapes.
struct Planned {
  size_t region = 0;
  model::Subgraph piece;
  LayoutMap output_map;
  std::map<std::string, std::string> feed_of_entry;  // Target entry -> combined input name
};

// One input of the combined Target model fed from a Source value.
struct Feed {
  std::string source_value;
  Observed target;     // what the Target reads there
  LayoutMap map;       // Source element -> Target offset
};

struct Accumulator {
  double squared_error = 0, squared_source = 0, max_error = 0, max_source = 0;
  size_t nan_mismatches = 0;
  std::vector<double> image_error, image_source;
};

// The first `count` rows of a captured Source value laid out as the Target reads it, padded to
// `rows` rows by repeating the last.
Tensor fed_to_target(const Tensor& source, size_t count, size_t rows, const Feed& feed) {
  std::vector<int64_t> shape = feed.target.shape;
  shape[0] = static_cast<int64_t>(rows);
  Tensor out(feed.target.dtype, shape);
  const auto elements = static_cast<size_t>(feed.map.elements());
  const size_t out_size = dtype_size(out.dtype), in_size = dtype_size(source.dtype);
  std::vector<float> converted;
  if (source.dtype != out.dtype) converted = source.to_float();
  for (size_t i = 0; i < rows; ++i) {
    const size_t from = std::min(i, count - 1) * elements;
    std::byte* to = out.bytes.data() + i * elements * out_size;
    if (source.dtype == out.dtype && feed.map.identity()) {
      std::memcpy(to, source.bytes.data() + from * in_size, elements * in_size);
      continue;
    }
    feed.map.for_each(0, static_cast<int64_t>(elements), [&](int64_t e, int64_t offset) {
      std::byte* dst = to + static_cast<size_t>(offset) * out_size;
      if (converted.empty()) std::memcpy(dst, source.bytes.data() + (from + static_cast<size_t>(e)) * in_size, in_size);
      else store_as(out.dtype, converted[from + static_cast<size_t>(e)], dst);
    });
  }
  return out;
}

const float* float_view(const Tensor& t, std::vector<float>& storage) {
  if (t.dtype == DType::kFloat32) return t.data<float>();
  storage = t.to_float();
  return storage.data();
}

void accumulate(const Tensor& source, const Tensor& target, size_t count, const LayoutMap& map, Accumulator& acc) {
  std::vector<float> s_store, t_store;
  const float* s = float_view(source, s_store);
  const float* t = float_view(target, t_store);
  const auto elements = static_cast<size_t>(map.elements());
  for (size_t i = 0; i < count; ++i) {
    double image_error = 0, image_source = 0;
    const float* si = s + i * elements;
    const float* ti = t + i * elements;
    map.for_each(0, static_cast<int64_t>(elements), [&](int64_t e, int64_t offset) {
      const float sv = si[e], tv = ti[offset];
      if (std::isnan(sv) || std::isnan(tv)) {
        acc.nan_mismatches += std::isnan(sv) != std::isnan(tv);
        return;
      }
      const double d = static_cast<double>(tv) - static_cast<double>(sv);
      acc.squared_error += d * d;
      acc.squared_source += static_cast<double>(sv) * sv;
      image_error = std::max(image_error, std::fabs(d));
      image_source = std::max(image_source, std::fabs(static_cast<double>(sv)));
    });
    acc.image_error.push_back(image_error);
    acc.image_source.push_back(image_source);
    acc.max_error = std::max(acc.max_error, image_error);
    acc.max_source = std::max(acc.max_source, image_source);
  }
}

// A model's single input, and the batch it fixes (0 when dynamic).
struct InputInfo {
  std::string name;
  int64_t fixed_batch = 0;
};

Result<InputInfo> single_input(const onnx::ModelProto& model, const Tensor& inputs, const char* label) {
  std::unordered_set<std::string> initializers;
  for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
  std::vector<const onnx::ValueInfoProto*> real;
  for (const auto& in : model.graph().input())
    if (!initializers.count(in.name())) real.push_back(&in);
  if (real.size() != 1)
    return make_error("local replay feeds one image input, but the {} model has {} inputs", label, real.size());
  if (inputs.shape.empty() || inputs.shape[0] < 1)
    return make_error("local replay: {} inputs {} hold no image", label, shape_to_string(inputs.shape));
  InputInfo info{real[0]->name(), 0};
  const auto& shape = real[0]->type().tensor_type().shape();
  if (shape.dim_size() > 0 && shape.dim(0).has_dim_value() && shape.dim(0).dim_value() > 0)
    info.fixed_batch = shape.dim(0).dim_value();
  return info;
}

// The values a probe run on the first image shows: dtype and per-image shape of each.
Result<std::map<std::string, Observed>> probe_values(const runtime::Session& session, const Tensor& inputs,
                                                     int64_t fixed_batch, const char* label) {
  const size_t first = 0;
  const Tensor batch = gather_rows(inputs, std::span<const size_t>(&first, 1), fixed_batch);
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, session.run({batch}));
  std::map<std::string, Observed> seen;
  seen[session.inputs()[0].name] = Observed{batch.dtype, batch.shape};
  for (size_t i = 0; i < outputs.size(); ++i) {
    Observed o{outputs[i].dtype, outputs[i].shape};
    if (o.shape.empty() || o.shape[0] != batch.shape[0]) {
      o.dtype = DType::kUndefined;  // not a per-image activation
    } else {
      o.shape[0] = 1;
    }
    seen[session.outputs()[i].name] = std::move(o);
  }
  for (auto& [name, o] : seen)
    if (name == session.inputs()[0].name) o.shape[0] = 1;
  (void)label;
  return seen;
}

// Names of `values` that the model defines (node outputs and graph inputs).
std::set<std::string> defined_values(const onnx::GraphProto& g) {
  std::set<std::string> names;
  for (const auto& n : g.node())
    for (const auto& o : n.output())
      if (!o.empty()) names.insert(o);
  for (const auto& in : g.input()) names.insert(in.name());
  return names;
}

Result<std::unique_ptr<runtime::Session>> capture_session(const onnx::ModelProto& model,
                                                          const std::vector<std::string>& values,
                                                          const std::string& input, int threads,
                                                          const std::string& label) {
  runtime::SessionOptions so;
  so.threads = threads;
  so.optimize = false;
  for (const auto& v : values)
    if (v != input) so.capture.push_back(v);
  if (so.capture.empty()) so.capture.push_back(input);  // a session needs an output
  return runtime::Session::create(model_computing(model, so.capture), so, label);
}

std::string describe_observed(const std::string& value, const Observed& o) {
  return fmt::format("'{}' ({} {})", value, dtype_name(o.dtype), shape_to_string(o.shape));
}

void set_failed(RegionError& e, ReplayStatus status, std::string reason) {
  e.status = status;
  e.reason = std::move(reason);
  e.exceeds_tolerance = status == ReplayStatus::kOutputShapeDiffers;
}

}  // namespace

std::string_view replay_status_name(ReplayStatus status) {
  switch (status) {
    case ReplayStatus::kMeasured: return "measured";
    case ReplayStatus::kOutputShapeDiffers: return "output_shape_differs";
    case ReplayStatus::kInputUnavailable: return "input_unavailable";
    case ReplayStatus::kFailed: return "failed";
  }
  return "?";
}

double RegionError::severity() const {
  if (status == ReplayStatus::kOutputShapeDiffers) return kInf;
  if (status != ReplayStatus::kMeasured) return std::numeric_limits<double>::quiet_NaN();
  return nan_mismatches > 0 ? kInf : relative_l2;
}

namespace {

struct Sides {
  const onnx::ModelProto& source;
  const onnx::ModelProto& target;
  const Tensor& source_inputs;
  const Tensor& target_inputs;
  InputInfo source_input, target_input;
  std::map<std::string, Observed> source_seen, target_seen;  // probe results
};

// Checks a region's names and entries against the probes, finds its Target piece and decides
// whether it can run; feeds collects the combined model's entry inputs.
std::optional<Planned> plan_region(const Sides& sides, const ReplayRegion& region, size_t index,
                                   const model::NodeNames& target_names, std::map<std::pair<std::string, std::string>, std::string>& feed_names,
                                   std::map<std::string, Feed>& feeds, RegionError& error) {
  const auto s_out = sides.source_seen.find(region.source_output);
  const auto t_out = sides.target_seen.find(region.target_output);
  if (s_out == sides.source_seen.end() || t_out == sides.target_seen.end()) {
    set_failed(error, ReplayStatus::kFailed,
               fmt::format("the {} model has no value '{}'", s_out == sides.source_seen.end() ? "Source" : "Target",
                           s_out == sides.source_seen.end() ? region.source_output : region.target_output));
    return std::nullopt;
  }
  std::set<std::string> entry_values;
  std::map<std::string, std::string> source_of_entry;
  for (const auto& [t, s] : region.entries)
    if (source_of_entry.emplace(t, s).second) entry_values.insert(t);
  auto piece = model::subgraph_between(sides.target.graph(), entry_values, {region.target_output});
  if (!piece.ok()) {
    set_failed(error, ReplayStatus::kFailed, "Target: " + piece.error().message);
    return std::nullopt;
  }
  for (int n : piece->nodes) error.target_nodes.push_back(target_names.names[static_cast<size_t>(n)]);
  error.entries_read = piece->entries_read;
  error.graph_inputs_read = piece->graph_inputs_read;
  error.source_shape = s_out->second.shape;
  error.target_shape = t_out->second.shape;
  if (piece->nodes.empty()) {
    set_failed(error, ReplayStatus::kFailed, fmt::format("no Target node between the entries and '{}'", region.target_output));
    return std::nullopt;
  }
  Planned plan;
  plan.region = index;
  for (const auto& entry : piece->entries_read) {
    const std::string& s_value = source_of_entry.at(entry);
    const auto s = sides.source_seen.find(s_value);
    const auto t = sides.target_seen.find(entry);
    std::optional<LayoutMap> map;
    if (s != sides.source_seen.end() && t != sides.target_seen.end() && s->second.dtype != DType::kUndefined &&
        t->second.dtype != DType::kUndefined &&
        (s->second.dtype == t->second.dtype || (is_float_type(s->second.dtype) && is_float_type(t->second.dtype))))
      map = LayoutMap::create(s->second.shape, t->second.shape);
    if (!map) {
      set_failed(error, ReplayStatus::kInputUnavailable,
                 fmt::format("entry {} cannot be fed from Source {}",
                             t == sides.target_seen.end() ? "'" + entry + "'" : describe_observed(entry, t->second),
                             s == sides.source_seen.end() ? "'" + s_value + "' (no such value)"
                                                          : describe_observed(s_value, s->second)));
      return std::nullopt;
    }
    auto [it, fresh] = feed_names.emplace(std::make_pair(entry, s_value), "");
    if (fresh) {
      it->second = fmt::format("replay_feed{}/{}", feed_names.size() - 1, entry);
      feeds.emplace(it->second, Feed{s_value, t->second, *map});
    }
    plan.feed_of_entry[entry] = it->second;
  }
  auto out_map = LayoutMap::create(s_out->second.shape, t_out->second.shape);
  if (s_out->second.dtype == DType::kUndefined || t_out->second.dtype == DType::kUndefined || !out_map) {
    set_failed(error, ReplayStatus::kOutputShapeDiffers,
               fmt::format("Target output {} cannot be aligned with Source {}",
                           describe_observed(region.target_output, t_out->second),
                           describe_observed(region.source_output, s_out->second)));
    return std::nullopt;
  }
  error.target_permutation = out_map->permutation();
  plan.output_map = *out_map;
  plan.piece = std::move(piece).value();
  return plan;
}

// The combined model of every planned piece, as one session.
Result<std::unique_ptr<runtime::Session>> pieces_session(const Sides& sides, const std::vector<ReplayRegion>& regions,
                                                         const std::vector<Planned>& plans,
                                                         const std::map<std::string, Feed>& feeds, int threads) {
  std::vector<model::SubgraphCopy> copies;
  for (const auto& p : plans) {
    model::SubgraphCopy c;
    c.piece = p.piece;
    c.prefix = fmt::format("replay{}/", p.region);
    c.outputs = {regions[p.region].target_output};
    c.entry_inputs = p.feed_of_entry;
    copies.push_back(std::move(c));
  }
  std::map<std::string, model::FrontierValue> types;
  const int64_t batch = sides.target_input.fixed_batch > 0 ? sides.target_input.fixed_batch : -1;
  for (const auto& [name, feed] : feeds) {
    model::FrontierValue v{feed.target.dtype, feed.target.shape};
    v.shape[0] = batch;
    types.emplace(name, std::move(v));
  }
  FETAFIX_ASSIGN_OR_RETURN(auto combined, model::combine_subgraphs(sides.target, copies, types));
  runtime::SessionOptions so;
  so.threads = threads;
  so.optimize = false;  // the Source values were captured unoptimized: compute the same way
  return runtime::Session::create(combined, so, "Target regions");
}

size_t bytes_per_image(const std::map<std::string, Observed>& values) {
  size_t total = 0;
  for (const auto& [name, o] : values)
    if (o.dtype != DType::kUndefined) total += static_cast<size_t>(shape_numel(o.shape)) * dtype_size(o.dtype);
  return total;
}

}  // namespace

namespace {

struct Batching {
  size_t images = 0, chunk = 1;
};

// Runs every image through the Source capture and the combined Target pieces, batch by batch,
// and accumulates each planned region's error.
Status run_batches(const Sides& sides, const runtime::Session& source_session, const runtime::Session& pieces,
                   const std::vector<ReplayRegion>& regions, const std::vector<Planned>& plans,
                   const std::map<std::string, Feed>& feeds, const Batching& batching, tbb::task_arena& arena,
                   std::vector<Accumulator>& acc, ReplayRun& run) {
  std::map<std::string, size_t> output_index;
  for (size_t i = 0; i < pieces.outputs().size(); ++i) output_index[pieces.outputs()[i].name] = i;
  const int64_t t_fixed = sides.target_input.fixed_batch;
  std::vector<Tensor> s_out, t_out;  // reused batch after batch (Session::run_into)
  for (size_t first = 0; first < batching.images; first += batching.chunk) {
    const size_t count = std::min(batching.chunk, batching.images - first);
    std::vector<size_t> rows(count);
    for (size_t i = 0; i < count; ++i) rows[i] = first + i;
    auto t0 = Clock::now();
    const Tensor s_batch = gather_rows(sides.source_inputs, rows, sides.source_input.fixed_batch);
    FETAFIX_TRY_STATUS(source_session.run_into({s_batch}, s_out));
    run.source_seconds += seconds_since(t0);
    std::map<std::string, const Tensor*> source_values{{sides.source_input.name, &s_batch}};
    for (size_t i = 0; i < s_out.size(); ++i) source_values[source_session.outputs()[i].name] = &s_out[i];

    const size_t padded = t_fixed > 1 ? (count + static_cast<size_t>(t_fixed) - 1) / static_cast<size_t>(t_fixed) *
                                            static_cast<size_t>(t_fixed)
                                      : count;
    std::vector<Tensor> inputs;
    for (const auto& in : pieces.inputs()) {
      auto feed = feeds.find(in.name);
      if (feed == feeds.end()) inputs.push_back(gather_rows(sides.target_inputs, rows, t_fixed));
      else inputs.push_back(fed_to_target(*source_values.at(feed->second.source_value), count, padded, feed->second));
    }
    t0 = Clock::now();
    FETAFIX_TRY_STATUS(pieces.run_into(inputs, t_out));
    run.target_seconds += seconds_since(t0);
    ++run.batches;
    arena.execute([&] {
      tbb::parallel_for(size_t{0}, plans.size(), [&](size_t k) {
        const ReplayRegion& r = regions[plans[k].region];
        const size_t out = output_index.at(fmt::format("replay{}/{}", plans[k].region, r.target_output));
        accumulate(*source_values.at(r.source_output), t_out[out], count, plans[k].output_map, acc[k]);
      });
    });
  }
  return {};
}

void finish_region(const Accumulator& acc, double tolerance, RegionError& e) {
  e.status = ReplayStatus::kMeasured;
  e.reason.clear();
  e.relative_l2 = acc.squared_source > 0 ? std::sqrt(acc.squared_error / acc.squared_source)
                                         : (acc.squared_error > 0 ? kInf : 0.0);
  e.max_abs_error = acc.max_error;
  e.max_abs_source = acc.max_source;
  e.image_max_abs_error = acc.image_error;
  e.image_max_abs_source = acc.image_source;
  e.nan_mismatches = acc.nan_mismatches;
  e.exceeds_tolerance = acc.nan_mismatches > 0 || e.relative_l2 > tolerance;
}

// The values to capture on each side: what the regions name and the models define.
void values_to_capture(const Sides& sides, const std::vector<ReplayRegion>& regions,
                       std::vector<std::string>& source_values, std::vector<std::string>& target_values) {
  const auto s_defined = defined_values(sides.source.graph()), t_defined = defined_values(sides.target.graph());
  std::set<std::string> s, t;
  for (const auto& r : regions) {
    if (s_defined.count(r.source_output)) s.insert(r.source_output);
    if (t_defined.count(r.target_output)) t.insert(r.target_output);
    for (const auto& [tv, sv] : r.entries) {
      if (s_defined.count(sv)) s.insert(sv);
      if (t_defined.count(tv)) t.insert(tv);
    }
  }
  source_values.assign(s.begin(), s.end());
  target_values.assign(t.begin(), t.end());
}

}  // namespace

Result<ReplayRun> replay_regions(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                 const std::vector<ReplayRegion>& regions, const Tensor& source_inputs,
                                 const Tensor& target_inputs, const ReplayOptions& options) {
  if (options.batch_size < 1) return make_error("local replay: batch_size must be at least 1");
  FETAFIX_ASSIGN_OR_RETURN(const InputInfo s_in, single_input(source, source_inputs, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(const InputInfo t_in, single_input(target, target_inputs, "Target"));
  if (source_inputs.shape[0] != target_inputs.shape[0])
    return make_error("local replay: {} Source images but {} Target images", source_inputs.shape[0],
                      target_inputs.shape[0]);
  Sides sides{source, target, source_inputs, target_inputs, s_in, t_in, {}, {}};
  ReplayRun run;
  run.images = static_cast<size_t>(source_inputs.shape[0]);
  run.regions.resize(regions.size());
  for (size_t i = 0; i < regions.size(); ++i) run.regions[i].id = regions[i].id;
  if (regions.empty()) return run;

  std::vector<std::string> s_values, t_values;
  values_to_capture(sides, regions, s_values, t_values);
  if (s_values.empty() || t_values.empty()) {
    for (size_t i = 0; i < regions.size(); ++i)
      set_failed(run.regions[i], ReplayStatus::kFailed,
                 fmt::format("the {} model has none of the values named", s_values.empty() ? "Source" : "Target"));
    return run;
  }
  FETAFIX_ASSIGN_OR_RETURN(auto source_session, capture_session(source, s_values, s_in.name, options.threads, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(auto target_probe, capture_session(target, t_values, t_in.name, options.threads, "Target"));
  run.sessions = 2;
  FETAFIX_ASSIGN_OR_RETURN(sides.source_seen, probe_values(*source_session, source_inputs, s_in.fixed_batch, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(sides.target_seen, probe_values(*target_probe, target_inputs, t_in.fixed_batch, "Target"));
  target_probe.reset();

  const auto target_names = model::name_nodes(target.graph());
  std::map<std::pair<std::string, std::string>, std::string> feed_names;
  std::map<std::string, Feed> feeds;
  std::vector<Planned> plans;
  for (size_t i = 0; i < regions.size(); ++i)
    if (auto p = plan_region(sides, regions[i], i, target_names, feed_names, feeds, run.regions[i]))
      plans.push_back(std::move(*p));
  if (plans.empty()) return run;

  auto pieces = pieces_session(sides, regions, plans, feeds, options.threads);
  if (!pieces.ok()) {
    for (const auto& p : plans)
      set_failed(run.regions[p.region], ReplayStatus::kFailed, "the Target regions cannot run: " + pieces.error().message);
    return run;
  }
  ++run.sessions;
  // A batch holds the Source's captured values (ONNX Runtime's buffer and our copy), the feeds,
  // and the regions' outputs (twice as well).
  size_t per_image = 2 * bytes_per_image(sides.source_seen);
  for (const auto& [name, feed] : feeds)
    per_image += static_cast<size_t>(shape_numel(feed.target.shape)) * dtype_size(feed.target.dtype);
  for (const auto& p : plans) {
    const auto& o = sides.target_seen.at(regions[p.region].target_output);
    per_image += 2 * static_cast<size_t>(shape_numel(o.shape)) * dtype_size(o.dtype);
  }
  Batching batching{run.images, std::clamp<size_t>(options.memory_budget_bytes / std::max<size_t>(per_image, 1), 1,
                                                   options.batch_size)};
  auto arena = options.threads > 0 ? std::make_unique<tbb::task_arena>(options.threads)
                                   : std::make_unique<tbb::task_arena>();
  std::vector<Accumulator> acc(plans.size());
  FETAFIX_TRY_STATUS(run_batches(sides, *source_session, **pieces, regions, plans, feeds, batching, *arena, acc, run));
  for (size_t k = 0; k < plans.size(); ++k) finish_region(acc[k], options.tolerance, run.regions[plans[k].region]);
  return run;
}

// ---------------------------------------------------------------------------------------------
// Matched layers

namespace {

// Ops a layer's boundary extends through: element-wise, one activation input, the rest weights.
bool extends_boundary(const std::string& op) {
  static const std::set<std::string> ops{
      "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
      "Elu", "Selu", "Softplus", "Softsign", "Mish", "Gelu", "Mul", "Add", "Sub", "Div", "Min", "Max", "Neg",
      "Identity", "Cast", "QuantizeLinear", "DequantizeLinear", "Transpose"};
  return ops.count(op) > 0;
}

bool is_weight_value(const model::GraphView& view, const std::string& value) {
  if (value.empty() || view.is_initializer(value)) return true;
  const auto p = view.producer(value);
  return p && !view.reached_from_inputs(*p);
}

}  // namespace

std::string layer_boundary(const model::GraphView& view, size_t node) {
  const auto& first = view.node(node);
  if (first.output_size() == 0) return "";
  std::string value = first.output(0);
  for (int step = 0; step < 16 && !view.is_graph_output(value); ++step) {
    const auto uses = view.consumers(value);
    if (uses.size() != 1 || uses[0].input_index < 0) break;
    const auto& next = view.node(uses[0].node);
    if (!extends_boundary(next.op_type()) || next.output_size() < 1 || next.output(0).empty()) break;
    bool weights_only = true;
    for (int i = 0; i < next.input_size() && weights_only; ++i)
      weights_only = i == uses[0].input_index || is_weight_value(view, next.input(i));
    for (int i = 1; i < next.output_size() && weights_only; ++i)
      weights_only = next.output(i).empty() || view.consumers(next.output(i)).empty();
    if (!weights_only) break;
    value = next.output(0);
  }
  return value;
}

Result<std::vector<LayerReplay>> matched_boundaries(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                    const std::vector<match::NodeMatch>& pairs) {
  auto sv = model::GraphView::build(source.graph());
  if (!sv.ok()) return make_error("local replay: Source: {}", sv.error().message);
  auto tv = model::GraphView::build(target.graph());
  if (!tv.ok()) return make_error("local replay: Target: {}", tv.error().message);
  std::vector<LayerReplay> layers;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto s = sv->find_node(pairs[i].source_node);
    const auto t = tv->find_node(pairs[i].target_node);
    if (!s || !t)
      return make_error("local replay: pair {} names node '{}', which the {} model does not have", i,
                        s ? pairs[i].target_node : pairs[i].source_node, s ? "Target" : "Source");
    LayerReplay layer;
    layer.source_node = pairs[i].source_node;
    layer.target_node = pairs[i].target_node;
    layer.source_value = layer_boundary(*sv, *s);
    layer.target_value = layer_boundary(*tv, *t);
    if (layer.source_value.empty() || layer.target_value.empty())
      return make_error("local replay: pair {} ('{}', '{}') has a node without an output", i, layer.source_node,
                        layer.target_node);
    layers.push_back(std::move(layer));
  }
  return layers;
}

Result<LocalReplay> replay_matched_layers(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                          const std::vector<match::NodeMatch>& pairs, const Tensor& source_inputs,
                                          const Tensor& target_inputs, const ReplayOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(auto layers, matched_boundaries(source, target, pairs));
  // Region k: its boundary computed from every other pair's boundary (the Source's values).
  std::vector<ReplayRegion> regions;
  for (size_t k = 0; k < layers.size(); ++k) {
    ReplayRegion r{layers[k].source_node, layers[k].source_value, layers[k].target_value, {}};
    for (size_t j = 0; j < layers.size(); ++j)
      if (j != k && layers[j].target_value != layers[k].target_value)
        r.entries.emplace_back(layers[j].target_value, layers[j].source_value);
    regions.push_back(std::move(r));
  }
  FETAFIX_ASSIGN_OR_RETURN(auto run, replay_regions(source, target, regions, source_inputs, target_inputs, options));
  LocalReplay out;
  out.tolerance = options.tolerance;
  out.images = run.images;
  out.batches = run.batches;
  out.sessions = run.sessions;
  out.source_seconds = run.source_seconds;
  out.target_seconds = run.target_seconds;
  for (size_t k = 0; k < layers.size(); ++k) layers[k].error = std::move(run.regions[k]);
  std::vector<size_t> order;
  for (size_t k = 0; k < layers.size(); ++k)
    if (!std::isnan(layers[k].error.severity())) order.push_back(k);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return layers[a].error.severity() > layers[b].error.severity(); });
  for (size_t pos = 0; pos < order.size(); ++pos) {
    layers[order[pos]].rank = static_cast<int>(pos);
    out.ranked.push_back(layers[order[pos]]);
  }
  for (auto& l : layers)
    if (l.rank < 0) out.ranked.push_back(std::move(l));
  return out;
}

const LayerReplay* LocalReplay::find(const std::string& source_node) const {
  for (const auto& l : ranked)
    if (l.source_node == source_node) return &l;
  return nullptr;
}

std::vector<const LayerReplay*> LocalReplay::exceeding() const {
  std::vector<const LayerReplay*> out;
  for (const auto& l : ranked)
    if (l.rank >= 0 && l.error.exceeds_tolerance) out.push_back(&l);
  return out;
}

std::map<std::string, int> layer_order(const LocalReplay& replay, const ActivationAnalysis& activation) {
  std::map<std::string, int> order;
  int next = 0;
  for (const LayerReplay* l : replay.exceeding()) order.emplace(l->source_node, next++);
  for (const auto& l : activation.ranked)  // by rank, the skipped ones (rank -1) last
    if (l.rank >= 0 && order.emplace(l.source_node, next).second) ++next;
  return order;
}

namespace {

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

nlohmann::json to_json(const RegionError& e) {
  nlohmann::json j{{"id", e.id},
                   {"status", replay_status_name(e.status)},
                   {"target_nodes", e.target_nodes},
                   {"entries_read", e.entries_read},
                   {"graph_inputs_read", e.graph_inputs_read},
                   {"source_shape", e.source_shape},
                   {"target_shape", e.target_shape},
                   {"target_permutation", e.target_permutation},
                   {"exceeds_tolerance", e.exceeds_tolerance}};
  if (e.status == ReplayStatus::kMeasured) {
    // +inf (Source all zero, Target not) is written as null, with relative_l2_infinite set.
    j["relative_l2"] = finite_or_null(e.relative_l2);
    if (std::isinf(e.relative_l2)) j["relative_l2_infinite"] = true;
    j["max_abs_error"] = e.max_abs_error;
    j["max_abs_source"] = e.max_abs_source;
    j["nan_mismatches"] = e.nan_mismatches;
  } else {
    j["reason"] = e.reason;
  }
  return j;
}

nlohmann::json to_json(const LocalReplay& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.ranked) {
    nlohmann::json j = to_json(l.error);
    j.erase("id");
    j["source_node"] = l.source_node;
    j["target_node"] = l.target_node;
    j["source_value"] = l.source_value;
    j["target_value"] = l.target_value;
    j["rank"] = l.rank;
    layers.push_back(std::move(j));
  }
  if (!r.skipped_reason.empty()) return nlohmann::json{{"layers", std::move(layers)}, {"skipped_reason", r.skipped_reason}};
  return nlohmann::json{{"layers", std::move(layers)},
                        {"tolerance", r.tolerance},
                        {"images", r.images},
                        {"batches", r.batches},
                        {"sessions", r.sessions}};
}

}  // namespace fetafix::localize
