#include "compare/verdict_codec.h"

namespace fetafix::compare {

namespace {

void put(ByteWriter& out, const TopK& t) {
  out.put(t.ids);
  out.put(t.scores);
}
void get(ByteReader& in, TopK& t) {
  in.get(t.ids);
  in.get(t.scores);
}

void put(ByteWriter& out, const std::vector<Detection>& ds) {
  out.put(static_cast<uint64_t>(ds.size()));
  for (const auto& d : ds) {
    out.put(d.label);
    out.put(d.score);
    for (float c : d.box) out.put(c);
  }
}
void get(ByteReader& in, std::vector<Detection>& ds) {
  ds.resize(in.get_count());
  for (auto& d : ds) {
    d.label = in.get<int64_t>();
    d.score = in.get<float>();
    for (float& c : d.box) c = in.get<float>();
  }
}

struct Put {
  ByteWriter& out;
  void operator()(const std::monostate&) const {}
  void operator()(const LabelEvidence& e) const {
    put(out, e.source);
    put(out, e.target);
    out.put(e.target_in_source);
    out.put(e.top_k_overlap);
    out.put(e.source_classes);
    out.put(e.target_classes);
  }
  void operator()(const BoxesEvidence& e) const {
    put(out, e.source);
    put(out, e.target);
    out.put(static_cast<uint64_t>(e.matches.size()));
    for (const auto& m : e.matches) {
      out.put(static_cast<uint64_t>(m.source));
      out.put(static_cast<uint64_t>(m.target));
      out.put(m.iou);
    }
    out.put(e.normalized);
  }
  void operator()(const MaskEvidence& e) const {
    out.put(e.shape);
    out.put(e.pixels);
    out.put(e.pixel_agreement);
    out.put(e.mean_iou);
    out.put(static_cast<uint64_t>(e.classes.size()));
    for (const auto& c : e.classes) {
      out.put(c.label);
      out.put(c.source_pixels);
      out.put(c.target_pixels);
      out.put(c.iou);
    }
  }
  void operator()(const TextEvidence& e) const {
    out.put(e.source_ids);
    out.put(e.target_ids);
    out.put(e.source_text);
    out.put(e.target_text);
    out.put(static_cast<uint64_t>(e.edits));
  }
  void operator()(const TensorEvidence& e) const {
    out.put(static_cast<uint64_t>(e.outputs.size()));
    for (const auto& o : e.outputs) {
      out.put(o.name);
      out.put(o.source_shape);
      out.put(o.target_shape);
      out.put(o.agree);
      out.put(o.max_abs_error);
      out.put(o.relative_l2);
      out.put(o.cosine);
      out.put(o.outside_tolerance);
      out.put(o.nonfinite_mismatches);
    }
  }
};

void get(ByteReader& in, LabelEvidence& e) {
  get(in, e.source);
  get(in, e.target);
  in.get(e.target_in_source);
  e.top_k_overlap = in.get<double>();
  e.source_classes = in.get<int64_t>();
  e.target_classes = in.get<int64_t>();
}

void get(ByteReader& in, BoxesEvidence& e) {
  get(in, e.source);
  get(in, e.target);
  e.matches.resize(in.get_count());
  for (auto& m : e.matches) {
    m.source = in.get<uint64_t>();
    m.target = in.get<uint64_t>();
    m.iou = in.get<double>();
  }
  e.normalized = in.get<bool>();
}

void get(ByteReader& in, MaskEvidence& e) {
  in.get(e.shape);
  e.pixels = in.get<int64_t>();
  e.pixel_agreement = in.get<double>();
  e.mean_iou = in.get<double>();
  e.classes.resize(in.get_count());
  for (auto& c : e.classes) {
    c.label = in.get<int64_t>();
    c.source_pixels = in.get<int64_t>();
    c.target_pixels = in.get<int64_t>();
    c.iou = in.get<double>();
  }
}

void get(ByteReader& in, TextEvidence& e) {
  in.get(e.source_ids);
  in.get(e.target_ids);
  in.get(e.source_text);
  in.get(e.target_text);
  e.edits = in.get<uint64_t>();
}

void get(ByteReader& in, TensorEvidence& e) {
  e.outputs.resize(in.get_count());
  for (auto& o : e.outputs) {
    in.get(o.name);
    in.get(o.source_shape);
    in.get(o.target_shape);
    o.agree = in.get<bool>();
    o.max_abs_error = in.get<double>();
    o.relative_l2 = in.get<double>();
    o.cosine = in.get<double>();
    o.outside_tolerance = in.get<int64_t>();
    o.nonfinite_mismatches = in.get<int64_t>();
  }
}

// The alternative `index` of Evidence, default-made, then read.
template <size_t I = 0>
void get_alternative(ByteReader& in, size_t index, Evidence& e) {
  if constexpr (I < std::variant_size_v<Evidence>) {
    if (index != I) return get_alternative<I + 1>(in, index, e);
    auto& value = e.emplace<I>();
    if constexpr (I > 0) get(in, value);
  }
}

}  // namespace

void encode(ByteWriter& out, const Verdict& v) {
  out.put(v.agree);
  out.put(v.distance);
  out.put(v.detail);
  out.put(static_cast<uint64_t>(v.evidence.index()));
  std::visit(Put{out}, v.evidence);
}

void decode(ByteReader& in, Verdict& v) {
  v.agree = in.get<bool>();
  v.distance = in.get<double>();
  in.get(v.detail);
  const auto index = in.get<uint64_t>();
  get_alternative(in, static_cast<size_t>(index), v.evidence);
}

void encode(ByteWriter& out, const Error& e) {
  out.put(e.message);
  out.put(static_cast<int32_t>(e.kind));
}

void decode(ByteReader& in, Error& e) {
  in.get(e.message);
  e.kind = static_cast<ErrorKind>(in.get<int32_t>());
}

}  // namespace fetafix::compare
