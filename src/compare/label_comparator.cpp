// `label`: class scores. Agree when the top-1 labels are equal (the Target's shifted by the
// label offset); distance = L1 between the two probability vectors (in [0, 2]), which is what
// repair breaks ties with. The output is read flattened per sample: [N, classes] is what the
// comparator expects, and only an explicit --task label makes it read any other shape.
#include <cmath>

#include "compare/builtin_comparators.h"

namespace fetafix::compare {

namespace {

class LabelComparator final : public Comparator {
 public:
  using Comparator::Comparator;

  Status on_bind(const ModelOutputs& source, const ModelOutputs& target) override {
    k_ = static_cast<int>(task().integer("top_k", 5));
    k_given_ = task().has("top_k");
    offset_ = task().integer("offset", 0);
    if (k_ < 1) return make_error("--task label: top_k must be at least 1 (got {})", k_);
    FETAFIX_ASSIGN_OR_RETURN(output_, resolve_output("output"));
    // Declared class counts: --top-k and --label-offset are checked before any sample runs
    // (dynamic counts are checked on every sample in compare()).
    const int64_t s = declared_classes(source.outputs[output_.first]), t = declared_classes(target.outputs[output_.second]);
    if (s > 0 && t > 0) {
      FETAFIX_TRY_STATUS(check_label_options(k_, k_given_, offset_, s, t));
      k_ = label_k(k_, s, t);
    }
    return {};
  }

  Result<Verdict> compare(std::span<const Tensor> source, std::span<const Tensor> target) const override {
    const FloatValues s(source[output_.first]), t(target[output_.second]);
    if (s.size() < 2 || t.size() < 2)
      return make_error("{}: output '{}' has {} value(s) per sample: not class scores",
                        s.size() < 2 ? source_model().label : target_model().label,
                        source_model().outputs[output_.first].name, std::min(s.size(), t.size()));
    LabelEvidence e;
    e.source_classes = static_cast<int64_t>(s.size());
    e.target_classes = static_cast<int64_t>(t.size());
    FETAFIX_TRY_STATUS(check_label_options(k_, k_given_, offset_, e.source_classes, e.target_classes));
    const int k = label_k(k_, e.source_classes, e.target_classes);
    e.source = top_k(s, k);
    e.target = top_k(t, k);
    for (int64_t id : e.target.ids) e.target_in_source.push_back(to_source_label(id, offset_, e.source_classes));
    e.top_k_overlap = top_k_overlap(e.source.ids, e.target_in_source, k);
    Verdict v;
    v.agree = e.source.ids[0] == e.target_in_source[0];
    v.distance = probability_distance(s, t);
    v.detail = fmt::format("{} ({:.3f}) -> {} ({:.3f})", e.source.ids[0], e.source.scores[0], e.target.ids[0],
                           e.target.scores[0]);
    v.evidence = std::move(e);
    return v;
  }

  TaskSummary summarize(std::span<const Verdict> verdicts) const override {
    TaskSummary out;
    double overlap = 0;
    size_t top1_in_k = 0;
    int64_t source_classes = 0, target_classes = 0;
    for (const auto& v : verdicts) {
      const auto& e = std::get<LabelEvidence>(v.evidence);
      overlap += e.top_k_overlap;
      top1_in_k += std::find(e.target_in_source.begin(), e.target_in_source.end(), e.source.ids[0]) !=
                   e.target_in_source.end();
      source_classes = e.source_classes;
      target_classes = e.target_classes;
    }
    const double n = verdicts.empty() ? 1.0 : static_cast<double>(verdicts.size());
    const int k = verdicts.empty() ? k_ : label_k(k_, source_classes, target_classes);
    out.figures = {{"top_k", k},
                   {"top_k_agreement", overlap / n},
                   {"source_top1_in_target_top_k", top1_in_k / n},
                   {"label_offset", offset_},
                   {"source_classes", source_classes},
                   {"target_classes", target_classes}};
    if (source_classes != target_classes && !task().has("offset"))
      out.warnings.push_back(fmt::format(
          "Source has {} classes and Target {}: if one counts a background class, pass --label-offset "
          "(Target label - offset = Source label; 1 for a 1001-class Target; or --task label:offset=1)",
          source_classes, target_classes));
    return out;
  }

 private:
  // Sum over Source classes of |p_S(k) - p_T(k + offset)|.
  double probability_distance(std::span<const float> s, std::span<const float> t) const {
    const std::vector<float> ps = probabilities(s), pt = probabilities(t);
    double d = 0;
    for (size_t k = 0; k < ps.size(); ++k) {
      const int64_t tk = static_cast<int64_t>(k) + offset_;
      d += std::fabs(ps[k] - (tk >= 0 && tk < static_cast<int64_t>(pt.size()) ? pt[static_cast<size_t>(tk)] : 0.0f));
    }
    return d;
  }

  // Classes per sample of an output as declared ([N,1000] -> 1000); 0 when a dim after the
  // batch is unknown.
  static int64_t declared_classes(const runtime::ValueInfo& output) {
    if (output.shape.size() < 2) return 0;
    int64_t classes = 1;
    for (size_t d = 1; d < output.shape.size(); ++d) {
      if (output.shape[d] <= 0 || output.shape[d] > (int64_t{1} << 31)) return 0;
      classes *= output.shape[d];
      if (classes > (int64_t{1} << 31)) return 0;
    }
    return classes;
  }

  int k_ = 5;
  bool k_given_ = false;  // top_k asked for: more than the class count is an error
  int64_t offset_ = 0;
  std::pair<size_t, size_t> output_;
};

}  // namespace

ComparatorKind label_comparator_kind() {
  return kind_of<LabelComparator>(
      "label", "class scores: agree when the top-1 labels are equal; distance = L1 between the probabilities",
      {
        {"output", OptionType::kText, "the only output", "the output holding the class scores"},
        {"top_k", OptionType::kInteger, "5 (--top-k)", "length of the label lists compared and reported"},
        {"offset", OptionType::kInteger, "0 (--label-offset)", "Target label - offset = Source label"},
      },
      any_output_with_rank([](size_t rank) { return rank == 2; }));
}

}  // namespace fetafix::compare
