// `tensor`: any outputs, element by element. Agree when every output read is within tolerance:
// |T - S| <= atol + rtol * |S| for every element (numpy.allclose's rule), or, with cosine=C,
// cosine(S, T) >= C per output (for embeddings, whose scale does not matter). A NaN or Inf in
// the Target where the Source has a finite value (or a different non-finite one) is
// disagreement. Distance = relative L2 over all outputs read, ||T - S|| / ||S||, capped at
// kTensorDistanceCap, which is also what a shape mismatch or a non-finite mismatch gets.
//
// Defaults rtol = 1e-3, atol = 1e-4: Polygraphy's 1e-5 suits two runs of one model in one
// framework; a conversion changes kernels (summation order, fused BatchNorm, Winograd), which
// moves float32 outputs of deep networks by 1e-6..1e-4 relative, and onnx2tf checks atol 1e-4.
// A float16 Target (about 1e-3 relative per value, growing with depth) fails on purpose.
#include <cmath>
#include <limits>

#include "compare/builtin_comparators.h"

namespace fetafix::compare {

namespace {

constexpr double kDefaultRtol = 1e-3, kDefaultAtol = 1e-4;

struct OutputStats {
  TensorEvidence::Output out;
  double diff_sq = 0, source_sq = 0;  // finite pairs only
};

class TensorComparator final : public Comparator {
 public:
  using Comparator::Comparator;

  Status on_bind(const ModelOutputs&, const ModelOutputs&) override {
    rtol_ = task().number("rtol", kDefaultRtol);
    atol_ = task().number("atol", kDefaultAtol);
    if (task().has("cosine")) {
      if (task().has("rtol") || task().has("atol"))
        return make_error("--task tensor: give cosine= or rtol=/atol=, not both");
      cosine_ = task().number("cosine", 0);
      if (*cosine_ < -1 || *cosine_ > 1) return make_error("--task tensor: cosine must be in [-1, 1] (got {})", *cosine_);
    }
    if (rtol_ < 0 || atol_ < 0) return make_error("--task tensor: rtol and atol must not be negative");
    const auto names = task().all("output");
    if (names.empty()) {
      FETAFIX_ASSIGN_OR_RETURN(pairs_, resolve_all());
    } else {
      for (const auto& n : names) {
        FETAFIX_ASSIGN_OR_RETURN(auto p, resolve_named(n));
        pairs_.push_back(p);
      }
    }
    return {};
  }

  Result<Verdict> compare(std::span<const Tensor> source, std::span<const Tensor> target) const override {
    TensorEvidence e;
    double diff_sq = 0, source_sq = 0;
    bool incomparable = false;
    for (const auto& [si, ti] : pairs_) {
      OutputStats st = measure(source[si], target[ti]);
      st.out.name = source_model().outputs[si].name;
      incomparable |= st.out.source_shape != st.out.target_shape || st.out.nonfinite_mismatches > 0;
      diff_sq += st.diff_sq;
      source_sq += st.source_sq;
      e.outputs.push_back(std::move(st.out));
    }
    Verdict v;
    v.agree = std::all_of(e.outputs.begin(), e.outputs.end(), [](const auto& o) { return o.agree; });
    v.distance = incomparable ? kTensorDistanceCap : relative(diff_sq, source_sq);
    v.detail = detail(e);
    v.evidence = std::move(e);
    return v;
  }

  TaskSummary summarize(std::span<const Verdict> verdicts) const override {
    TaskSummary out;
    nlohmann::json per_output = nlohmann::json::object();
    for (const auto& [si, ti] : pairs_) {
      const std::string& name = source_model().outputs[si].name;
      double worst_abs = 0, worst_rel = 0;
      size_t disagreeing = 0;
      for (const auto& v : verdicts)
        for (const auto& o : std::get<TensorEvidence>(v.evidence).outputs) {
          if (o.name != name) continue;
          worst_abs = std::max(worst_abs, o.max_abs_error);
          worst_rel = std::max(worst_rel, o.relative_l2);
          disagreeing += !o.agree;
        }
      per_output[name] = {{"disagreeing", disagreeing}, {"max_abs_error", worst_abs}, {"max_relative_l2", worst_rel}};
    }
    out.figures = {{"mode", cosine_ ? "cosine" : "elementwise"}, {"outputs", std::move(per_output)}};
    if (cosine_) out.figures["cosine"] = *cosine_;
    else out.figures.update({{"rtol", rtol_}, {"atol", atol_}});
    return out;
  }

 private:
  static double relative(double diff_sq, double source_sq) {
    const double r = source_sq > 0 ? std::sqrt(diff_sq / source_sq) : std::sqrt(diff_sq);
    return std::min(r, kTensorDistanceCap);
  }

  OutputStats measure(const Tensor& s_tensor, const Tensor& t_tensor) const {
    OutputStats st;
    st.out.source_shape = s_tensor.shape;
    st.out.target_shape = t_tensor.shape;
    if (s_tensor.shape != t_tensor.shape) {
      st.out.relative_l2 = kTensorDistanceCap;
      return st;
    }
    const FloatValues s(s_tensor), t(t_tensor);
    double dot = 0, tt = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const bool sf = std::isfinite(s[i]), tf = std::isfinite(t[i]);
      if (!sf || !tf) {
        const bool same = !sf && !tf && (std::isnan(s[i]) ? std::isnan(t[i]) : s[i] == t[i]);
        st.out.nonfinite_mismatches += !same;
        continue;
      }
      const double d = static_cast<double>(t[i]) - s[i];
      st.diff_sq += d * d;
      st.source_sq += static_cast<double>(s[i]) * s[i];
      dot += static_cast<double>(s[i]) * t[i];
      tt += static_cast<double>(t[i]) * t[i];
      st.out.max_abs_error = std::max(st.out.max_abs_error, std::fabs(d));
      st.out.outside_tolerance += std::fabs(d) > atol_ + rtol_ * std::fabs(s[i]);
    }
    st.out.relative_l2 = relative(st.diff_sq, st.source_sq);
    const double norms = std::sqrt(st.source_sq) * std::sqrt(tt);
    st.out.cosine = norms > 0 ? dot / norms : (st.source_sq == tt ? 1.0 : 0.0);
    const bool within = cosine_ ? st.out.cosine >= *cosine_ : st.out.outside_tolerance == 0;
    st.out.agree = within && st.out.nonfinite_mismatches == 0;
    return st;
  }

  std::string detail(const TensorEvidence& e) const {
    const TensorEvidence::Output* worst = nullptr;
    for (const auto& o : e.outputs)
      if (!worst || (!o.agree && worst->agree) || (o.agree == worst->agree && o.relative_l2 > worst->relative_l2))
        worst = &o;
    if (!worst) return "no output";
    if (worst->source_shape != worst->target_shape)
      return fmt::format("'{}': shape {} vs {}", worst->name, shape_to_string(worst->source_shape),
                         shape_to_string(worst->target_shape));
    std::string s = fmt::format("'{}': max |T-S| {:.3g}, rel L2 {:.3g}", worst->name, worst->max_abs_error,
                                worst->relative_l2);
    if (cosine_) s += fmt::format(", cosine {:.6f}", worst->cosine);
    else if (worst->outside_tolerance) s += fmt::format(", {} outside tolerance", worst->outside_tolerance);
    if (worst->nonfinite_mismatches) s += fmt::format(", {} NaN/Inf mismatches", worst->nonfinite_mismatches);
    return s;
  }

  double rtol_ = kDefaultRtol, atol_ = kDefaultAtol;
  std::optional<double> cosine_;
  std::vector<std::pair<size_t, size_t>> pairs_;
};

}  // namespace

ComparatorKind tensor_comparator_kind() {
  return kind_of<TensorComparator>(
      "tensor", "any outputs: agree when every element is within atol + rtol*|S| (or cosine >= C); distance = relative L2",
      {
        {"output", OptionType::kText, "every output", "an output to compare (repeat for several)", true},
        {"rtol", OptionType::kNumber, "1e-3", "relative tolerance"},
        {"atol", OptionType::kNumber, "1e-4", "absolute tolerance"},
        {"cosine", OptionType::kNumber, "off", "agree when cosine(S, T) >= this, per output (embeddings)"},
      },
      [](const std::vector<runtime::ValueInfo>&) { return true; });
}

}  // namespace fetafix::compare
