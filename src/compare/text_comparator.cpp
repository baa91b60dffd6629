// `text`: CTC sequence outputs ([N, T, C] scores per time step, PaddleOCR's and most CRNNs'
// layout; layout=tnc for torch's [T, N, C]). Greedy decoding: the best class per step,
// repeats collapsed, the blank dropped. Agree when both decoded sequences are equal; distance =
// edit distance / the longer length (0 when both are empty), in [0, 1]. With charset=FILE the
// symbols print as text: line i of the file names the i-th class that is not the blank (the
// PaddleOCR convention: blank = 0, class k = line k-1).
#include <fstream>

#include "compare/builtin_comparators.h"

namespace fetafix::compare {

namespace {

// Checks UTF-8 well-formedness, so decoded text can always be printed and written as JSON.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += len;
  }
  return true;
}

Result<std::vector<std::string>> load_charset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("--task text: charset={}: cannot read the file", path);
  std::vector<std::string> symbols;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!valid_utf8(line)) return make_error("{}: line {} is not valid UTF-8", path, symbols.size() + 1);
    symbols.push_back(line);
  }
  if (symbols.empty()) return make_error("{}: the charset is empty (one symbol per line expected)", path);
  return symbols;
}

size_t edit_distance(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

class TextComparator final : public Comparator {
 public:
  using Comparator::Comparator;

  Status on_bind(const ModelOutputs& source, const ModelOutputs&) override {
    blank_ = task().integer("blank", 0);
    time_major_ = task().text("layout", "ntc") == "tnc";
    FETAFIX_ASSIGN_OR_RETURN(output_, resolve_output("output"));
    const auto& declared = source.outputs[output_.first];
    if (declared.shape.size() != 3)
      return make_error("--task text: output {} must be [batch, time, classes] (rank 3)", describe_output(declared));
    if (auto path = task().get("charset")) {
      FETAFIX_ASSIGN_OR_RETURN(charset_, load_charset(*path));
      const int64_t classes = declared.shape[2];
      if (classes > 0 && static_cast<int64_t>(charset_.size()) > classes - 1)
        return make_error("--task text: charset {} has {} symbols, but output '{}' has {} classes ({} besides the blank)",
                          *path, charset_.size(), declared.name, classes, classes - 1);
    }
    return {};
  }

  Result<Verdict> compare(std::span<const Tensor> source, std::span<const Tensor> target) const override {
    TextEvidence e;
    FETAFIX_ASSIGN_OR_RETURN(e.source_ids, decode(source[output_.first], source_model().label));
    FETAFIX_ASSIGN_OR_RETURN(e.target_ids, decode(target[output_.second], target_model().label));
    e.source_text = spell(e.source_ids);
    e.target_text = spell(e.target_ids);
    e.edits = edit_distance(e.source_ids, e.target_ids);
    Verdict v;
    v.agree = e.source_ids == e.target_ids;
    const size_t longer = std::max(e.source_ids.size(), e.target_ids.size());
    v.distance = longer ? static_cast<double>(e.edits) / longer : 0.0;
    v.detail = v.agree ? fmt::format("'{}'", e.source_text)
                       : fmt::format("'{}' -> '{}' ({} edit{})", e.source_text, e.target_text, e.edits,
                                     e.edits == 1 ? "" : "s");
    v.evidence = std::move(e);
    return v;
  }

  TaskSummary summarize(std::span<const Verdict> verdicts) const override {
    double edits = 0, distance = 0;
    for (const auto& v : verdicts) {
      edits += static_cast<double>(std::get<TextEvidence>(v.evidence).edits);
      distance += v.distance;
    }
    const double n = verdicts.empty() ? 1.0 : static_cast<double>(verdicts.size());
    TaskSummary out;
    out.figures = {{"blank", blank_}, {"mean_edits", edits / n}, {"character_error_rate", distance / n}};
    return out;
  }

 private:
  Result<std::vector<int64_t>> decode(const Tensor& t, const std::string& label) const {
    if (t.shape.size() != 3)
      return make_error("{}: text output has shape {}; [batch, time, classes] expected", label, shape_to_string(t.shape));
    const int64_t steps = time_major_ ? t.shape[0] : t.shape[1], classes = t.shape[2];
    const int64_t batch = time_major_ ? t.shape[1] : t.shape[0];
    if (batch != 1) return make_error("{}: text output has shape {}; one sample expected", label, shape_to_string(t.shape));
    const FloatValues v(t);
    std::vector<int64_t> ids;
    int64_t previous = -1;
    for (int64_t step = 0; step < steps; ++step) {
      const float* row = v.data() + step * classes;
      const int64_t best = std::max_element(row, row + classes) - row;  // first of equal maxima
      if (best != previous && best != blank_) ids.push_back(best);
      previous = best;
    }
    return ids;
  }

  std::string spell(const std::vector<int64_t>& ids) const {
    std::string s;
    for (int64_t id : ids) {
      const int64_t index = id > blank_ ? id - 1 : id;  // the charset skips the blank
      s += !charset_.empty() && index >= 0 && index < static_cast<int64_t>(charset_.size())
               ? charset_[static_cast<size_t>(index)]
               : fmt::format("<{}>", id);
    }
    return s;
  }

  int64_t blank_ = 0;
  bool time_major_ = false;
  std::vector<std::string> charset_;
  std::pair<size_t, size_t> output_;
};

}  // namespace

ComparatorKind text_comparator_kind() {
  return kind_of<TextComparator>(
      "text", "CTC sequences: agree when the greedy decodings are equal; distance = edit distance / length",
      {
        {"output", OptionType::kText, "the only output", "the [batch, time, classes] output"},
        {"blank", OptionType::kInteger, "0", "the CTC blank class (PaddleOCR: 0; some CRNNs: the last class)"},
        {"charset", OptionType::kText, "none (ids print as <id>)", "file with one symbol per line, for the non-blank classes"},
        {"layout", OptionType::kText, "ntc", "ntc = [batch, time, classes]; tnc = [time, batch, classes]", false, {},
       {"ntc", "tnc"}},
      },
      any_output_with_rank([](size_t rank) { return rank == 3; }));
}

}  // namespace fetafix::compare
