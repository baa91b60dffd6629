// fetafix-evaluate: runs `fetafix localize` and `fetafix repair` on every case of the corpus
// (tools/fetafix-corpus) and prints the paper's Tables 2 and 3 side by side: per case, what was
// localized and kept per fault type, label disagreement before and after the repair on the
// detection images and on independent validation images, and time. Writes evaluation.json and
// evaluation.md. docs/evaluate.md.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "data/image.h"
#include "localize/finding.h"
#include "model/builder.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The fault types, in the order of the tables.
const std::vector<std::string> kTypes = [] {
  std::vector<std::string> names;
  for (auto type : fetafix::localize::kAllFaultTypes) names.emplace_back(fetafix::localize::fault_type_name(type));
  return names;
}();

struct Options {
  fs::path corpus = FETAFIX_BUILD_DIR "/corpus";
  fs::path images;
  fs::path out = FETAFIX_BUILD_DIR "/evaluation";
  fs::path fetafix = FETAFIX_BUILD_DIR "/src/cli/fetafix";
  std::vector<std::string> cases;
  size_t images_per_split = 0;  // 0: all (half the images each)
  double time_limit = 1800;
  uint64_t seed = 1;
  int threads = 0;
  bool skip_localize = false;
  bool resume = false;
};

struct Run {
  int exit_code = -1;
  bool timed_out = false;
  double seconds = 0;
};

// Runs argv with stdout/stderr into files; kills it (SIGTERM, then SIGKILL) past `limit` seconds.
Run run_program(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err, double limit) {
  Run r;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto t0 = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return r;
  }
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  bool terminated = false;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (elapsed > limit && !terminated) {
      kill(pid, SIGTERM);
      terminated = r.timed_out = true;
    } else if (terminated && elapsed > limit + 30) {
      kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::optional<json> read_json(const fs::path& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  try {
    return json::parse(f);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string last_line(const fs::path& path) {
  std::ifstream f(path);
  std::string line, last;
  while (std::getline(f, line))
    if (!line.empty()) last = line;
  return last;
}

// The images split in two halves by a seeded shuffle, each written as a folder of links.
struct Split {
  fs::path detection, validation;
  size_t detection_count = 0, validation_count = 0;
};

fetafix::Result<Split> split_images(const Options& o) {
  FETAFIX_ASSIGN_OR_RETURN(auto files, fetafix::data::list_images(o.images));
  fetafix::Rng rng(o.seed);
  for (size_t i = files.size(); i > 1; --i) std::swap(files[i - 1], files[rng.next_u64() % i]);  // Fisher-Yates
  const size_t half = files.size() / 2;
  const size_t n = o.images_per_split ? std::min(o.images_per_split, half) : half;
  Split s{o.out / "images" / "detection", o.out / "images" / "validation", n, n};
  for (const auto& [dir, begin] : {std::pair{s.detection, size_t{0}}, std::pair{s.validation, half}}) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) return fetafix::make_error("{}: cannot create folder: {}", dir.string(), ec.message());
    for (size_t k = 0; k < n; ++k) {
      const fs::path& f = files[begin + k];
      // The original name (labels stay readable), made unique by its place in the split.
      fs::create_symlink(fs::absolute(f), dir / fmt::format("{:04}_{}", k, f.filename().string()), ec);
      if (ec) return fetafix::make_error("{}: cannot link {}: {}", dir.string(), f.string(), ec.message());
    }
  }
  return s;
}

std::string preset_arg(const json& c, const std::string& key, const fs::path& case_dir) {
  const std::string p = c.value(key, "auto");
  return p.ends_with(".json") ? (case_dir / p).string() : p;
}

std::string percent(const json& v) { return v.is_number() ? fmt::format("{:.1f}", 100.0 * v.get<double>()) : "-"; }

// The repair's outcome from its log (`repair` holds exit_code/seconds/killed already).
void summarize_repair_log(const fs::path& out, json& repair) {
  const int exit_code = repair.value("exit_code", -1);
  auto log = read_json(out / "repair.json");
  if (exit_code == 2 || exit_code == 4 || exit_code < 0 || !log) {
    repair["error"] = repair.value("killed", false) ? "killed past the time limit" : last_line(out / "repair.err.txt");
    return;
  }
  repair.erase("error");
  for (const char* key : {"images", "initial_disagreeing", "final_disagreeing", "initial_discrepancy",
                          "final_discrepancy", "stop_reason", "time_limit_reached", "counts", "preprocess"})
    repair[key] = log->value(key, json(nullptr));
  if (log->contains("validation") && (*log)["validation"].is_object()) {
    const json& v = (*log)["validation"];
    const double n = std::max(1.0, v.value("images", 0) * 1.0);
    repair["validation"] = {{"images", v.value("images", 0)},
                            {"initial_disagreeing", v.value("initial_disagreeing", 0)},
                            {"final_disagreeing", v.value("final_disagreeing", 0)},
                            {"initial_discrepancy", v.value("initial_disagreeing", 0) / n},
                            {"final_discrepancy", v.value("final_disagreeing", 0) / n}};
  }
  // Why kept or not, briefly: the steps as the log gives them.
  // The findings each step was made for, by id (the ids `fetafix localize --json` gives them).
  json steps = json::array();
  for (const auto& s : log->value("steps", json::array()))
    steps.push_back({{"type", s.value("type", "")}, {"kept", s.value("kept", false)}, {"reason", s.value("reason", "")},
                     {"description", s.value("description", "")}, {"findings", s.value("finding_ids", json::array())},
                     {"before", s.value("disagreeing_before", 0)}, {"after", s.value("disagreeing_after", 0)}});
  repair["steps"] = std::move(steps);
}

// The task kind of a case: "label" for the classification cases (no `task` in case.json).
std::string task_kind(const json& c) {
  const json task = c.value("task", json(nullptr));
  if (!task.is_string()) return "label";
  const std::string spec = task;
  return spec.substr(0, spec.find(':'));
}

// What a case is fed: the photo split for label cases, its own sample folders (case.json `data`,
// relative to the case folder) for the task cases; the flags that name them.
struct CaseSamples {
  fs::path detection, validation;
  size_t detection_count = 0, validation_count = 0;
  std::vector<std::string> task;  // --task SPEC, or nothing
  const char* data_flag = "--images";
  const char* validate_flag = "--validate-images";
};

CaseSamples case_samples(const Split& split, const fs::path& case_dir, const json& c) {
  const json data = c.value("data", json(nullptr));
  CaseSamples s;
  if (!data.is_object() || !c.value("task", json(nullptr)).is_string()) {
    s.detection = split.detection, s.validation = split.validation;
    s.detection_count = split.detection_count, s.validation_count = split.validation_count;
    return s;
  }
  s.detection = case_dir / data["detection"].get<std::string>();
  s.validation = case_dir / data["validation"].get<std::string>();
  s.detection_count = s.validation_count = data.value("samples", size_t{0});
  s.task = {"--task", c["task"].get<std::string>()};
  s.data_flag = "--data";
  s.validate_flag = "--validate-data";
  return s;
}

// After a repair on a task case: do the repaired Target's outputs match the Source's within the
// tensor comparator's tolerance on the validation samples (the goal, whatever the task)?
json tensor_check(const Options& o, const fs::path& out, const std::vector<std::string>& pair, const CaseSamples& s,
                  const json& repair) {
  if (!fs::exists(out / "repaired.onnx")) return {{"skipped", "no repaired model"}};
  if (repair.value("preprocess", json(nullptr)).is_object()) return {{"skipped", "the repair changed the preprocessing"}};
  std::vector<std::string> argv{o.fetafix.string(), "compare", pair[0], (out / "repaired.onnx").string()};
  argv.insert(argv.end(), pair.begin() + 2, pair.end());
  argv.insert(argv.end(), {s.data_flag, s.validation.string(), "--task", "tensor", "--json",
                           (out / "tensor-check.json").string()});
  const Run r = run_program(argv, out / "tensor-check.out.txt", out / "tensor-check.err.txt", o.time_limit);
  auto j = read_json(out / "tensor-check.json");
  if (r.exit_code > 1 || !j) return {{"error", last_line(out / "tensor-check.err.txt")}};
  const json summary = j->value("summary", json::object());
  return {{"samples", summary.value("samples_compared", 0)}, {"disagreeing", summary.value("disagreeing", 0)}};
}

// One case: localize, then repair; everything the tables need.
json evaluate_case(const Options& o, const Split& split, const fs::path& case_dir, const json& c) {
  const std::string name = c["name"];
  const fs::path out = o.out / "cases" / name;
  fs::create_directories(out);
  const CaseSamples samples = case_samples(split, case_dir, c);
  const std::vector<std::string> pair{(case_dir / "source.onnx").string(),
                                      (case_dir / "target.onnx").string(),
                                      "--source-preprocess",
                                      preset_arg(c, "source_preprocess", case_dir),
                                      "--target-preprocess",
                                      preset_arg(c, "target_preprocess", case_dir),
                                      "--threads",
                                      std::to_string(o.threads),
                                      "-q"};
  std::vector<std::string> pair_task = pair;
  pair_task.insert(pair_task.end(), samples.task.begin(), samples.task.end());
  // Which tool produced the Target: a port case names its converter; the inject corpus has none.
  json result{{"name", name}, {"kind", c["kind"]}, {"task", task_kind(c)}, {"converter", c.value("converter", "inject")},
              {"model", c["model"]}, {"faults", c["faults"]},
              {"paper_row", c.value("paper_row", "")}, {"expected", c["expected"]},
              {"expected_preprocess", c.value("expected_preprocess", json(nullptr))},
              {"images", {{"detection", split.detection_count}, {"validation", split.validation_count},
                          {"seed", o.seed}, {"from", o.images.string()}}}};
  if (!samples.task.empty())
    result["samples"] = {{"detection", samples.detection_count}, {"validation", samples.validation_count},
                         {"from", samples.detection.parent_path().lexically_normal().string()}, {"task", samples.task[1]}};

  if (!o.skip_localize) {
    std::vector<std::string> argv{o.fetafix.string(), "localize"};
    argv.insert(argv.end(), pair_task.begin(), pair_task.end());
    argv.insert(argv.end(), {samples.data_flag, samples.detection.string(), "--json", (out / "localize.json").string()});
    const Run r = run_program(argv, out / "localize.out.txt", out / "localize.err.txt", o.time_limit);
    json findings = json::object();
    if (auto j = read_json(out / "localize.json"))
      for (const auto& f : (*j)["findings"])  // faults only: harmless, equivalent and notes are not localized faults
        if (f.value("is_fault", true)) findings[f["type"].get<std::string>()] = findings.value(f["type"].get<std::string>(), 0) + 1;
    result["localize"] = {{"exit_code", r.exit_code}, {"seconds", r.seconds}, {"timed_out", r.timed_out},
                          {"findings", findings}};
    if (r.exit_code > 1) result["localize"]["error"] = last_line(out / "localize.err.txt");
  }

  std::vector<std::string> argv{o.fetafix.string(), "repair"};
  argv.insert(argv.end(), pair_task.begin(), pair_task.end());
  argv.insert(argv.end(), {samples.data_flag, samples.detection.string(), samples.validate_flag, samples.validation.string(), "-o",
                           (out / "repaired.onnx").string(), "--json", (out / "repair.json").string(), "--time-limit",
                           fmt::format("{}", o.time_limit)});
  // The repair checks its own limit between evaluations; the margin covers the last one.
  const Run r = run_program(argv, out / "repair.out.txt", out / "repair.err.txt", o.time_limit * 1.5 + 60);
  json repair{{"exit_code", r.exit_code}, {"seconds", r.seconds}, {"killed", r.timed_out}};
  summarize_repair_log(out, repair);
  if (!samples.task.empty() && !repair.contains("error")) result["tensor_check"] = tensor_check(o, out, pair, samples, repair);
  result["repair"] = std::move(repair);
  return result;
}

// Per task kind: cases by kind and how they ended (the issue-11 goals: singles to 0, multis
// reduced by >= 90 %, benign untouched, repaired outputs within the tensor tolerance).
struct TaskTotals {
  size_t cases = 0, problematic = 0, fully_repaired = 0, benign = 0, benign_untouched = 0;
  int64_t initial_disagreeing = 0, final_disagreeing = 0;  // detection + validation, fault cases
  size_t tensor_checked = 0, tensor_matching = 0;          // repaired Targets within tolerance
};

struct Totals {
  std::map<std::string, TaskTotals> per_task;
  size_t problematic = 0, fully_repaired = 0, kept = 0, localized = 0, benign = 0, benign_untouched = 0,
         benign_kept = 0, benign_findings = 0, unexpected_kept = 0;
  std::map<std::string, std::pair<size_t, size_t>> per_type;  // localized, kept
  std::vector<std::string> not_problematic, failed;
};

size_t localized_of(const json& repair, const std::string& type) {
  const json counts = repair.value("counts", json::object());
  if (!counts.is_object() || !counts.contains(type)) return 0;
  return counts[type].value("localized", 0);
}

// Per finding, as Table 2 counts them: a kept group of weight repairs (WB*) counts each of its
// findings (fetafix.repair/1 counts since 6ae5fbd).
size_t kept_of(const json& repair, const std::string& type) {
  const json counts = repair.value("counts", json::object());
  if (!counts.is_object() || !counts.contains(type)) return 0;
  return counts[type].value("kept", 0);
}

size_t localize_findings(const json& result, const std::string& type) {
  if (!result.contains("localize")) return 0;
  return result["localize"]["findings"].value(type, 0);
}

int64_t number_of(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<int64_t>() : int64_t{-1};
}

// Disagreeing samples before and after the repair, detection and validation together.
std::pair<int64_t, int64_t> disagreeing_both(const json& rep) {
  const json v = rep.value("validation", json::object());
  const int64_t before = number_of(rep, "initial_disagreeing") + std::max<int64_t>(0, number_of(v, "initial_disagreeing"));
  const int64_t after = number_of(rep, "final_disagreeing") + std::max<int64_t>(0, number_of(v, "final_disagreeing"));
  return {before, after};
}

void count_task(TaskTotals& t, const json& r, bool problematic, bool fully_repaired) {
  ++t.cases;
  const json& rep = r["repair"];
  if (r["kind"] == "benign") {
    ++t.benign;
    size_t kept = 0;
    for (const auto& type : kTypes) kept += kept_of(rep, type);
    if (kept == 0 && !rep.contains("error")) ++t.benign_untouched;
  } else if (problematic) {
    ++t.problematic;
    if (fully_repaired) ++t.fully_repaired;
    if (!rep.contains("error")) {
      const auto [before, after] = disagreeing_both(rep);
      t.initial_disagreeing += before;
      t.final_disagreeing += after;
    }
  }
  const json check = r.value("tensor_check", json(nullptr));
  if (check.is_object() && check.contains("disagreeing")) {
    ++t.tensor_checked;
    if (check["disagreeing"] == 0) ++t.tensor_matching;
  }
}

Totals summarize(const json& results) {
  Totals t;
  for (const auto& r : results) {
    const json& rep = r["repair"];
    const bool benign = r["kind"] == "benign";
    TaskTotals& task = t.per_task[r.value("task", "label")];
    size_t kept_here = 0;
    for (const auto& type : kTypes) {
      const size_t l = localized_of(rep, type), k = kept_of(rep, type);
      kept_here += k;
      if (benign) {
        t.benign_findings += localize_findings(r, type);
        continue;
      }
      t.per_type[type].first += l;
      t.per_type[type].second += k;
      t.localized += l;
      t.kept += k;
      if (!r["expected"].contains(type)) t.unexpected_kept += k;
    }
    const bool failed = rep.contains("error");
    if (failed) t.failed.push_back(r["name"]);
    if (benign) {
      ++t.benign;
      t.benign_kept += kept_here;
      if (kept_here == 0 && !failed) ++t.benign_untouched;
      count_task(task, r, false, false);
      continue;
    }
    if (!failed && number_of(rep, "initial_disagreeing") == 0) {
      t.not_problematic.push_back(r["name"]);
      count_task(task, r, false, false);
      continue;
    }
    ++t.problematic;
    const bool validation_agrees = !rep.contains("validation") || number_of(rep["validation"], "final_disagreeing") == 0;
    const bool fully = !failed && number_of(rep, "final_disagreeing") == 0 && validation_agrees;
    if (fully) ++t.fully_repaired;
    count_task(task, r, true, fully);
  }
  return t;
}

std::string type_cell(const json& repair, const std::string& type) {
  const size_t l = localized_of(repair, type), k = kept_of(repair, type);
  return l == 0 && k == 0 ? "." : fmt::format("{}/{}", l, k);
}

// What the standalone `fetafix localize` reported, per type: "CG 35 LH 1".
std::string findings_cell(const json& result) {
  if (!result.contains("localize")) return "-";
  if (result["localize"].contains("error")) return "error";
  std::string s;
  for (const auto& type : kTypes)
    if (size_t n = localize_findings(result, type)) s += (s.empty() ? "" : " ") + fmt::format("{} {}", type, n);
  return s.empty() ? "none" : s;
}

std::string expected_cell(const json& expected) {
  std::string s;
  for (const auto& type : kTypes)
    if (expected.contains(type)) s += (s.empty() ? "" : " ") + fmt::format("{} {}", type, expected[type].get<int>());
  return s.empty() ? "-" : s;
}

std::string disagreement_cell(const json& rep, const char* scope) {
  const json& j = std::string(scope) == "validation" ? rep.value("validation", json(nullptr)) : rep;
  if (!j.is_object() || !j.contains("initial_discrepancy")) return "-";
  return fmt::format("{} -> {}", percent(j["initial_discrepancy"]), percent(j["final_discrepancy"]));
}

// Per task: fault cases fully repaired, disagreeing samples before -> after (detection and
// validation), benign cases untouched, repaired Targets within the tensor tolerance.
std::string per_task_markdown(const Totals& t) {
  std::string md = "\n| task | cases | fully repaired | disagreeing samples before -> after | benign untouched | "
                   "outputs within tensor tolerance after |\n|---|---|---|---|---|---|\n";
  for (const auto& [task, k] : t.per_task)
    md += fmt::format("| {} | {} | {}/{} | {} -> {} | {}/{} | {} |\n", task, k.cases, k.fully_repaired, k.problematic,
                      k.initial_disagreeing, k.final_disagreeing, k.benign_untouched, k.benign,
                      k.tensor_checked ? fmt::format("{}/{}", k.tensor_matching, k.tensor_checked) : "-");
  return md;
}

json per_task_json(const Totals& t) {
  json j = json::object();
  for (const auto& [task, k] : t.per_task)
    j[task] = {{"cases", k.cases}, {"problematic_cases", k.problematic}, {"fully_repaired", k.fully_repaired},
               {"initial_disagreeing", k.initial_disagreeing}, {"final_disagreeing", k.final_disagreeing},
               {"benign_cases", k.benign}, {"benign_cases_untouched", k.benign_untouched},
               {"tensor_checked", k.tensor_checked}, {"tensor_matching", k.tensor_matching}};
  return j;
}

// The table, as Markdown (a terminal shows it as well).
std::string markdown(const json& results, const Totals& t, const json& setup) {
  std::string md = "# fetafix evaluation\n\n";
  md += fmt::format("Corpus `{}`; {} detection and {} validation images (seed {}); repair time limit {} s per case; "
                    "fetafix `{}`.\n\n",
                    setup["corpus"].get<std::string>(), setup["detection_images"].get<size_t>(),
                    setup["validation_images"].get<size_t>(), setup["seed"].get<uint64_t>(),
                    setup["time_limit"].get<double>(), setup["fetafix"].get<std::string>());
  md += "Localized/kept repairs per fault type (Table 2), label disagreement % before -> after the repair on the "
        "detection and the validation images (Table 3).\n\n";
  md += "| case | kind | task | converter | planted | localize found | PP | ID | TSS | WB | LH | CG | detection % | "
        "validation % | stop | localize s | repair s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : results) {
    const json& rep = r["repair"];
    std::string stop = rep.contains("error") ? "error: " + rep["error"].get<std::string>()
                                             : rep.value("stop_reason", json("")).get<std::string>();
    std::replace(stop.begin(), stop.end(), '|', '/');
    md += fmt::format("| {} | {} | {} | {} | {} | {} |", r["name"].get<std::string>(), r["kind"].get<std::string>(),
                      r.value("task", "label"), r.value("converter", "inject"), expected_cell(r["expected"]),
                      findings_cell(r));
    for (const auto& type : kTypes) md += " " + type_cell(rep, type) + " |";
    md += fmt::format(" {} | {} | {} | {} | {:.0f} |\n", disagreement_cell(rep, "detection"),
                      disagreement_cell(rep, "validation"), stop,
                      r.contains("localize") ? fmt::format("{:.0f}", r["localize"]["seconds"].get<double>()) : "-",
                      rep["seconds"].get<double>());
  }
  md += "| **total** (fault cases) | | | | |";
  for (const auto& type : kTypes) {
    auto it = t.per_type.find(type);
    md += it == t.per_type.end() ? " . |" : fmt::format(" {}/{} |", it->second.first, it->second.second);
  }
  md += " | | | | |\n\n";
  md += fmt::format("Benign cases: {}/{} left without a kept repair; localize reported {} findings in them, {} "
                    "repaired wrongly. Fault cases: {} kept repairs of a type that was not planted.\n",
                    t.benign_untouched, t.benign, t.benign_findings, t.benign_kept, t.unexpected_kept);
  if (!t.not_problematic.empty()) {
    md += "Fault cases whose Target already agreed with the Source on every detection image (left out of the count): ";
    for (size_t i = 0; i < t.not_problematic.size(); ++i) md += (i ? ", " : "") + t.not_problematic[i];
    md += ".\n";
  }
  if (!t.failed.empty()) {
    md += "Cases whose repair failed: ";
    for (size_t i = 0; i < t.failed.size(); ++i) md += (i ? ", " : "") + t.failed[i];
    md += ".\n";
  }
  md += fmt::format("\n**{}/{} cases fully repaired; localization precision {}/{}**\n", t.fully_repaired,
                    t.problematic, t.kept, t.localized);
  md += per_task_markdown(t);
  return md;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Runs fetafix localize and repair on every corpus case; prints the paper's Tables 2 and 3"};
  Options o;
  const char* assets_env = std::getenv("FETAFIX_ASSETS");
  const fs::path assets = assets_env ? fs::path(assets_env) : fs::path(FETAFIX_DEFAULT_ASSETS);
  o.images = assets / "images" / "imagenet-samples";
  std::string corpus = o.corpus, images = o.images, out = o.out, fetafix = o.fetafix;
  app.add_option("--corpus", corpus, "corpus folder (tools/fetafix-corpus)")->capture_default_str();
  app.add_option("--images", images, "photos split into detection and validation halves")->capture_default_str();
  app.add_option("--out", out, "where JSON, Markdown and per-case logs go")->capture_default_str();
  app.add_option("--fetafix", fetafix, "the fetafix binary")->capture_default_str();
  app.add_option("--cases", o.cases, "only these cases (comma-separated names)")->delimiter(',');
  app.add_option("--images-per-split", o.images_per_split, "images in each half (default: all, half each)");
  app.add_option("--time-limit", o.time_limit, "repair time limit per case, seconds")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the detection/validation split")->capture_default_str();
  app.add_option("--threads", o.threads, "ONNX Runtime threads per model (0 = one per core)")->capture_default_str();
  app.add_flag("--skip-localize", o.skip_localize, "run only repair (it localizes itself)");
  app.add_flag("--resume", o.resume, "reuse the results of cases already evaluated into --out (their result.json)");
  CLI11_PARSE(app, argc, argv);
  o.corpus = corpus;
  o.images = images;
  o.out = out;
  o.fetafix = fetafix;

  if (!fs::exists(o.fetafix)) {
    std::fprintf(stderr, "fetafix-evaluate: %s: no fetafix binary (build the fetafix target)\n", o.fetafix.c_str());
    return 2;
  }
  // Cases: every folder with a case.json, in the corpus index's order (else by name).
  std::vector<std::string> names;
  if (auto index = read_json(o.corpus / "index.json"))
    for (const auto& c : (*index)["cases"])
      if (c.value("written", false)) names.push_back(c["name"]);
  if (names.empty() && fs::is_directory(o.corpus)) {
    for (const auto& e : fs::directory_iterator(o.corpus))
      if (fs::exists(e.path() / "case.json")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
  }
  if (!o.cases.empty()) {
    for (const auto& wanted : o.cases)
      if (std::find(names.begin(), names.end(), wanted) == names.end()) {
        std::fprintf(stderr, "fetafix-evaluate: %s: no case '%s'\n", o.corpus.c_str(), wanted.c_str());
        return 2;
      }
    names = o.cases;
  }
  if (names.empty()) {
    std::fprintf(stderr, "fetafix-evaluate: %s: no corpus cases (run tools/fetafix-corpus first)\n", o.corpus.c_str());
    return 2;
  }
  auto split = split_images(o);
  if (!split.ok()) {
    std::fprintf(stderr, "fetafix-evaluate: %s\n", split.error().message.c_str());
    return 2;
  }
  std::printf("%zu cases; %zu detection and %zu validation images from %s\n", names.size(), split->detection_count,
              split->validation_count, o.images.c_str());

  json results = json::array();
  for (const auto& name : names) {
    const fs::path dir = o.corpus / name;
    auto c = read_json(dir / "case.json");
    if (!c) {
      std::fprintf(stderr, "fetafix-evaluate: %s: cannot read case.json\n", dir.c_str());
      return 2;
    }
    std::printf("%-36s ", name.c_str());
    std::fflush(stdout);
    const fs::path saved = o.out / "cases" / name / "result.json";
    std::optional<json> reused = o.resume ? read_json(saved) : std::nullopt;
    const json images{{"detection", split->detection_count}, {"validation", split->validation_count},
                      {"seed", o.seed}, {"from", o.images.string()}};
    if (reused && reused->value("images", json(nullptr)) != images) reused.reset();  // other images: run again
    if (reused) summarize_repair_log(o.out / "cases" / name, (*reused)["repair"]);  // this version's reading
    json r = reused ? *reused : evaluate_case(o, *split, dir, *c);
    if (!reused)
      if (auto st = fetafix::write_file_atomic(saved, r.dump(2) + "\n"); !st.ok()) {
        std::fprintf(stderr, "fetafix-evaluate: %s\n", st.error().message.c_str());
        return 2;
      }
    const json& rep = r["repair"];
    std::printf("%s  det %s  val %s  (%.0f s%s)\n",
                rep.contains("error") ? ("error: " + rep["error"].get<std::string>()).c_str()
                                      : rep.value("stop_reason", json("")).get<std::string>().c_str(),
                disagreement_cell(rep, "detection").c_str(), disagreement_cell(rep, "validation").c_str(),
                rep["seconds"].get<double>() + (r.contains("localize") ? r["localize"]["seconds"].get<double>() : 0),
                reused ? ", reused" : "");
    results.push_back(std::move(r));
  }
  const Totals t = summarize(results);
  const json setup{{"corpus", o.corpus.string()},
                   {"images", o.images.string()},
                   {"detection_images", split->detection_count},
                   {"validation_images", split->validation_count},
                   {"seed", o.seed},
                   {"time_limit", o.time_limit},
                   {"fetafix", o.fetafix.string()}};
  const std::string md = markdown(results, t, setup);
  json per_type = json::object();
  for (const auto& [type, lk] : t.per_type) per_type[type] = {{"localized", lk.first}, {"kept", lk.second}};
  const json summary{{"schema", "fetafix.evaluation/1"},
                     {"setup", setup},
                     {"cases", results},
                     {"summary",
                      {{"fully_repaired", t.fully_repaired},
                       {"problematic_cases", t.problematic},
                       {"kept_repairs", t.kept},
                       {"localized_faults", t.localized},
                       {"per_type", per_type},
                       {"per_task", per_task_json(t)},
                       {"benign_cases", t.benign},
                       {"benign_cases_untouched", t.benign_untouched},
                       {"benign_findings_localized", t.benign_findings},
                       {"benign_findings_repaired", t.benign_kept},
                       {"unexpected_type_repairs", t.unexpected_kept},
                       {"not_problematic", t.not_problematic},
                       {"failed", t.failed}}}};
  for (const auto& [file, text] : {std::pair{o.out / "evaluation.json", summary.dump(2) + "\n"},
                                   std::pair{o.out / "evaluation.md", md}})
    if (auto st = fetafix::write_file_atomic(file, text); !st.ok()) {
      std::fprintf(stderr, "fetafix-evaluate: %s\n", st.error().message.c_str());
      return 2;
    }
  std::printf("\n%s\nwrote %s and %s\n", md.c_str(), (o.out / "evaluation.json").c_str(),
              (o.out / "evaluation.md").c_str());
  return 0;
}
