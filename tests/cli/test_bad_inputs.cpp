// The bad-input matrix: one row per way a user (or a hostile file) can hand fetafix something
// wrong, run through the real binary. Each row says what the run must answer (exit code, a
// fragment of its one-line error) and what it must leave alone. On top of each row's own
// expectations, every row checks the same three promises of docs/cli.md:
//   - exit code 4 ("internal error") never happens, and no run hangs (each has a 120 s timeout);
//   - on exit 2, stderr is exactly one line "fetafix: ..." and stdout is empty (no results are
//     printed by a run that then fails);
//   - every file that existed before the run is unchanged afterwards (regular files byte for
//     byte; FIFOs, sockets and devices still the same kind of file), and the only new files are
//     the row's expected outputs (so no temporary or partial file is left behind).
// Groups are the numbered findings of issue 14 (the rows on --data samples and --input
// constants apply them to the sample readers: .npy, .npz, .wav); "ok" rows are cases that
// already worked and must keep working.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "match/cnn_fixture.h"
#include "model/builder.h"
#include "data/audio.h"
#include "data/npy.h"
#include "model/model.h"
#include "support/assets.h"
#include "support/cli.h"
#include "support/images.h"
#include "support/models.h"
#include "support/special_files.h"

namespace fetafix {
namespace {
namespace fs = std::filesystem;

struct BadInput {
  const char* name;
  const char* group;             // issue 14's group, or "ok"
  std::string command;           // after `fetafix`; {D} is the row's scratch folder
  std::vector<int> exit_codes;   // any of these
  std::string stderr_has;        // a fragment of stderr ("" = nothing asked)
  std::vector<std::string> must_not_exist;  // relative to {D}
  std::vector<std::string> creates;         // outputs the run must write (relative to {D})
  std::string prefix;            // shell words before the binary: "ulimit -f 2;", "VAR=x", ...
  std::string output_has;        // a fragment of the first created file
  bool root_only = false;        // needs mknod (a character device)
};

std::ostream& operator<<(std::ostream& os, const BadInput& c) { return os << c.name; }

// The usual command lines; {D} is replaced by the row's folder.
const std::string kPair = " {D}/source.onnx {D}/target.onnx --source-preprocess raw --target-preprocess raw --quiet";
std::string compare(const std::string& extra, const std::string& images = "images") {
  return "compare" + kPair + " --images {D}/" + images + " " + extra;
}
std::string localize(const std::string& extra) { return "localize" + kPair + " --images {D}/images " + extra; }
const std::string kCnnPair = " {D}/cnn.onnx {D}/cnn_fault.onnx --source-preprocess raw --target-preprocess raw --quiet";
std::string repair(const std::string& extra, const std::string& images = "images") {
  return "repair" + kCnnPair + " --images {D}/" + images + " " + extra;
}
std::string apply(const std::string& patch, const std::string& output = "{D}/applied.onnx") {
  return "apply " + patch + " {D}/cnn_fault.onnx -o " + output;
}
std::string inject(const std::string& model, const std::string& extra) {
  return "inject " + model + " --fault wb:fp16 " + extra;
}
// Sample data of any kind (--data): a vector model ([N,10] -> Relu) on .npy/.npz samples, or a
// waveform model ([N,?]) on .wav samples, compared as tensors.
std::string data_compare(const std::string& folder, const std::string& extra, const std::string& model = "vector") {
  return "compare {D}/" + model + ".onnx {D}/" + model + ".onnx --task tensor --quiet --data {D}/" + folder + " " + extra;
}

std::vector<BadInput> cases() {
  const std::vector<int> ran{0, 1};         // compare/localize ran (agree or not)
  const std::vector<int> repaired{0, 1, 3};  // repair ran
  return {
      // 1. Outputs onto special files: refused up front, the special file left as it is.
      {"JsonOntoFifo", "1", compare("--json {D}/fifo"), {2}, "a FIFO"},
      {"JsonOntoSocket", "1", compare("--json {D}/socket"), {2}, "a socket"},
      {"JsonOntoCharDevice", "1", compare("--json {D}/chardev"), {2}, "character device", {}, {}, "", "", true},
      {"JsonOntoLinkToFifo", "1", compare("--json {D}/link_to_fifo"), {2}, "link to a FIFO"},
      {"ReportOntoFifo", "1", compare("--report {D}/fifo"), {2}, "a FIFO"},
      {"RepairOutputOntoCharDevice", "1", repair("-o {D}/chardev"), {2}, "character device", {}, {}, "", "", true},
      {"RepairPatchOntoFifo", "1", repair("-o {D}/out.onnx --patch {D}/fifo"), {2}, "a FIFO", {"out.onnx"}},
      {"ApplyOutputOntoSocket", "1", apply("{D}/patch.json", "{D}/socket"), {2}, "a socket"},
      {"InjectOutputOntoFifo", "1", inject("{D}/cnn.onnx", "-o {D}/fifo --truth {D}/t.json"), {2}, "a FIFO", {"t.json"}},
      {"InjectTruthOntoFifo", "1", inject("{D}/cnn.onnx", "-o {D}/x.onnx --truth {D}/fifo"), {2}, "a FIFO", {"x.onnx"}},
      {"FullDiskCompareJson", "1", compare("--json {D}/out.json"), {2}, "out.json: cannot write: File too large",
       {"out.json"}, {}, "ulimit -f 1;"},
      {"FullDiskRepairWritesNothing", "1", repair("-o {D}/out.onnx --patch {D}/p.json --json {D}/log.json"), {2},
       "cannot write: File too large", {"out.onnx", "p.json", "log.json"}, {}, "ulimit -f 4;"},
      // 2. Outputs onto inputs other than models.
      {"JsonOntoAnImage", "2", compare("--json {D}/images/img0.png"), {2}, "image folder"},
      {"JsonAsANewImageInTheFolder", "2", compare("--json {D}/images/sub/new.png"), {2}, "image folder",
       {"images/sub/new.png"}},
      {"JsonOntoAHardLinkOfAnImage", "2", compare("--json {D}/hardlink.png"), {2}, "refusing to overwrite the image"},
      {"DataJsonOntoASample", "2", data_compare("arrays", "--json {D}/arrays/a.npy"), {2}, "sample folder"},
      {"DataJsonAsANewSampleInTheFolder", "2", data_compare("arrays", "--json {D}/arrays/sub/new.npz"), {2},
       "it would be read as a sample", {"arrays/sub/new.npz"}},
      {"DataJsonOntoAHardLinkOfASample", "2", data_compare("arrays", "--json {D}/hardlink.npy"), {2},
       "refusing to overwrite the sample"},
      {"DataJsonOntoTheInputConstant", "2",
       data_compare("arrays", "--input features={D}/const.npy --json {D}/const.npy"), {2},
       "refusing to overwrite --input features"},
      {"DataJsonWithAnotherNameInTheFolderWorks", "ok", data_compare("arrays", "--json {D}/arrays/out.json"), {0}, "",
       {}, {"arrays/out.json"}, "", "fetafix.compare/2"},
      {"JsonOntoASymlinkToAnImage", "2", compare("--json {D}/symlink.png"), {2}, "image folder"},
      {"JsonOntoThePresetFile", "2",
       "compare {D}/source.onnx {D}/target.onnx --images {D}/images --quiet --source-preprocess {D}/preset.json "
       "--target-preprocess raw --json {D}/preset.json",
       {2}, "the preset file"},
      {"ApplyOutputOntoThePatch", "2", apply("{D}/patch.json", "{D}/patch.json"), {2}, "the patch"},
      {"RepairOutputIntoValidationImages", "2",
       repair("-o {D}/val/out.png --validate-images {D}/val"), {2}, "image folder", {"val/out.png"}},
      {"RepairPatchOntoTheTarget", "2", repair("-o {D}/out.onnx --patch {D}/cnn_fault.onnx"), {2}, "Target model",
       {"out.onnx"}},
      {"RepairReportOntoTheSource", "2", repair("-o {D}/out.onnx --report {D}/cnn.onnx"), {2}, "Source model",
       {"out.onnx"}},
      {"InjectTruthOntoTheModel", "ok", inject("{D}/cnn.onnx", "-o {D}/x.onnx --truth {D}/cnn.onnx"), {2},
       "input model", {"x.onnx"}},
      {"JsonOntoTheTargetModel", "ok", compare("--json {D}/target.onnx"), {2}, "refusing to overwrite"},
      {"JsonOntoASymlinkToTheTarget", "ok", compare("--json {D}/link_to_target.onnx"), {2}, "refusing to overwrite"},
      {"RepairOutputOntoTheTarget", "ok", repair("-o {D}/cnn_fault.onnx"), {2}, "refusing to overwrite"},
      // 3. Outputs onto each other.
      {"RepairOutputAndPatchTheSameFile", "3", repair("-o {D}/out.onnx --patch {D}/out.onnx"), {2}, "same file",
       {"out.onnx"}},
      {"RepairOutputAndJsonTheSameFile", "3", repair("-o {D}/out.onnx --json {D}/./out.onnx"), {2}, "same file",
       {"out.onnx"}},
      {"RepairPatchAndReportTheSameFile", "3", repair("-o {D}/out.onnx --patch {D}/r.html --report {D}/r.html"), {2},
       "same file", {"out.onnx", "r.html"}},
      {"CompareJsonAndReportTheSameFile", "3", compare("--json {D}/r.html --report {D}/r.html"), {2}, "same file",
       {"r.html"}},
      {"DataCompareJsonAndReportTheSameFile", "3", data_compare("arrays", "--json {D}/r.html --report {D}/r.html"), {2},
       "same file", {"r.html"}},
      // Known only once the task is resolved: still no output, no results printed.
      {"ReportOnATensorTaskWritesNothing", "11", data_compare("arrays", "--json {D}/out.json --report {D}/r.html"),
       {2}, "--report: the HTML report shows label tasks", {"out.json", "r.html"}},
      {"InjectOutputAndTruthTheSameFile", "ok", inject("{D}/cnn.onnx", "-o {D}/x.onnx --truth {D}/x.onnx"), {2},
       "same file", {"x.onnx"}},
      {"LocalizeJsonInsideTheExplorerFolder", "3", localize("--json {D}/ex/mapping.json --model-explorer {D}/ex"),
       {2}, "same file", {"ex/mapping.json"}},
      // 4. Absurd declared shapes: the tensor limit, up front, naming the file.
      {"InputOfAMillionByAMillionPixels", "4", "compare {D}/source.onnx {D}/huge_input.onnx --images {D}/images --quiet",
       {2}, "huge_input.onnx: input 'image' declares the shape [?,3,1000000,1000000]"},
      {"FixedBatchOfAMillion", "4", "compare {D}/huge_batch.onnx {D}/target.onnx --images {D}/images --quiet", {2},
       "huge_batch.onnx: input 'image'"},
      {"PresetOfHugeImages", "4",
       "compare {D}/source.onnx {D}/dynamic.onnx --images {D}/images --quiet --source-preprocess raw "
       "--target-preprocess raw --target-preprocess-override '{\"width\":65536,\"height\":65536}' "
       "--json {D}/out.json",
       {2}, "makes 65536x65536 images", {"out.json"}},
      // A large --batch-size under a low tensor limit runs smaller batches (compare/runner.h) instead.
      {"BatchOverALowTensorLimitRunsSmallerBatches", "4", compare("--batch-size 4096 --max-tensor-bytes 100000"), ran, ""},
      {"NpyDeclaringATerabyteUnderStrict", "4", data_compare("arrays_huge", "--strict"), {2},
       "huge.npy: array of shape [1048576,1048576] (float32) would take 4398046511104 bytes, over the tensor limit of "
       "4.0 GiB (--max-tensor-bytes)"},
      {"NpyDeclaringATerabyteIsSkipped", "4", data_compare("arrays_huge", ""), ran, "1 sample(s) could not be decoded"},
      {"NpyOverALowTensorLimitFromTheEnvironment", "4", data_compare("arrays_big", "--strict"), {2},
       "big.npy: array of shape [1,1000] (float32) would take 4000 bytes, over the tensor limit of 3.9 KiB", {}, {},
       "FETAFIX_MAX_TENSOR_BYTES=3999"},
      {"WavResampledOverTheTensorLimit", "4", data_compare("waves", "--strict --sample-rate 10000000 --max-tensor-bytes 1000000", "wave"),
       {2}, "tone.wav: resampled from 8000 Hz to 10000000 Hz it would take 10000000 samples, over the tensor limit"},
      {"InputConstantOverTheTensorLimit", "4",
       data_compare("arrays", "--input features={D}/arrays_huge/huge.npy"), {2}, "--input features: "},
      {"TensorLimitFromTheEnvironment", "4", compare(""), {2}, "tensor limit", {}, {}, "FETAFIX_MAX_TENSOR_BYTES=1000"},
      {"TensorLimitEnvironmentNotANumber", "4", compare(""), {2}, "FETAFIX_MAX_TENSOR_BYTES='lots'", {}, {},
       "FETAFIX_MAX_TENSOR_BYTES=lots"},
      {"TensorLimitZero", "4", compare("--max-tensor-bytes 0"), {2}, "--max-tensor-bytes: must be a positive integer"},
      // 5. File names that are not UTF-8.
      {"NonUtf8ImageNameInCompareJson", "5", compare("--json {D}/out.json", "images_latin1"), ran, "", {},
       {"out.json"}, "", "caf\\\\xE9.png"},
      {"NonUtf8ImageNameInLocalizeJson", "ok",
       "localize" + kPair + " --images {D}/images_latin1 --json {D}/out.json", ran, "", {}, {"out.json"}, "",
       "fetafix.localize/1"},
      {"NonUtf8SampleNameInDataJson", "5", data_compare("arrays_latin1", "--json {D}/out.json"), {0}, "", {},
       {"out.json"}, "", "caf\\\\xE9.npy"},
      {"NonUtf8ModelName", "5",
       "compare {D}/source.onnx '{D}/mod\xe9l.onnx' --images {D}/images --source-preprocess raw --target-preprocess raw "
       "--quiet --json {D}/out.json",
       ran, "", {}, {"out.json"}, "", "mod\\\\xE9l.onnx"},
      {"NonUtf8ImageNameInRepairWritesAllOrNothing", "5",
       repair("-o {D}/out.onnx --patch {D}/p.json --json {D}/log.json --report {D}/r.html --model-explorer {D}/mx",
              "images_latin1"),
       repaired, "", {}, {"out.onnx", "p.json", "log.json", "r.html", "mx"}},
      // 6. NaN in outputs: warned about, never "-nan", deterministic.
      {"NaNScoresAreWarnedAbout", "6",
       "compare {D}/source.onnx {D}/nan_target.onnx --images {D}/images --source-preprocess raw --target-preprocess raw "
       "--quiet --json {D}/out.json",
       {1}, "Target output holds NaN", {}, {"out.json"}, "", "\"score\": null"},
      // 7. --label-offset and --top-k against the class count.
      {"LabelOffsetBeyondTheClassCount", "7", compare("--label-offset 5"), {2}, "--label-offset 5"},
      {"NegativeLabelOffset", "7", compare("--label-offset -1"), {2}, "--label-offset -1"},
      {"TopKBeyondTheClassCount", "7", compare("--top-k 50"), {2}, "--top-k 50: the models have only 3 classes"},
      {"RepairLabelOffsetBeyondTheClassCount", "7", repair("-o {D}/out.onnx --label-offset 7"), {2}, "--label-offset",
       {"out.onnx"}},
      {"LocalizeTopKBeyondTheClassCount", "7", localize("--top-k 4 --json {D}/out.json"), {2}, "--top-k 4",
       {"out.json"}},
      {"LabelOffsetZeroWorks", "ok", compare("--label-offset 0"), {1}, ""},
      {"TopKEqualToTheClassCountWorks", "ok", compare("--top-k 3"), {1}, ""},
      // 8. Decompression bombs: the pixel limit before decoding.
      {"PngBombUnderStrict", "8", compare("--strict", "images_bomb"), {2}, "20000x20000 (400.0 MP), over the limit"},
      {"PngBombIsSkippedWithoutStrict", "ok", compare("", "images_bomb"), ran, "1 sample(s) could not be decoded"},
      {"JpegBombUnderStrict", "8", compare("--strict", "images_jpeg_bomb"), {2}, "60000x60000"},
      {"PixelLimitFlag", "8", compare("--strict --max-image-pixels 100"), {2}, "24x24 (576 pixels), over the limit of 100 pixels"},
      {"PixelLimitEnvironment", "8", compare("--strict"), {2}, "--max-image-pixels or FETAFIX_MAX_IMAGE_PIXELS", {},
       {}, "FETAFIX_MAX_IMAGE_PIXELS=100"},
      {"JpegWithHundredsOfScans", "8", compare("--strict", "images_scans"), {2}, "more than 500 progressive scans"},
      // 9. --strict with entries that are not images.
      {"StrictDanglingSymlink", "9", compare("--strict", "images_dangling"), {2}, "dangling symbolic link"},
      {"StrictLoopingSymlink", "9", compare("--strict", "images_loop"), {2}, "symbolic link loop"},
      {"StrictFifoNamedLikeAnImage", "9", compare("--strict", "images_fifo"), {2}, "a FIFO"},
      {"DanglingSymlinkIsCountedAsSkipped", "9", compare("", "images_dangling"), ran,
       "1 sample(s) could not be decoded"},
      {"StrictDanglingNpySymlink", "9", data_compare("arrays_dangling", "--strict"), {2}, "dangling symbolic link"},
      {"DanglingNpySymlinkIsCountedAsSkipped", "9", data_compare("arrays_dangling", ""), {0},
       "1 sample(s) could not be decoded"},
      {"StrictFifoNamedLikeAnNpz", "9", data_compare("arrays_fifo", "--strict"), {2}, "pipe.npz: is a FIFO"},
      {"StrictFifoNamedLikeAWav", "9", data_compare("waves_fifo", "--strict", "wave"), {2}, "pipe.wav: is a FIFO"},
      // 10. apply validates the model it writes.
      {"ApplyFivePads", "10", apply("{D}/bad_pads.json"), {2}, "makes an invalid model", {"applied.onnx"}},
      {"ApplyFloatAttributeCarryingInts", "10", apply("{D}/float_ints.json"), {2}, "cnn_fault.onnx",
       {"applied.onnx"}},
      {"ApplyWeightOfTheWrongShape", "10", apply("{D}/wrong_shape.json"), {2}, "cnn_fault.onnx", {"applied.onnx"}},
      {"ApplyValidPatch", "ok", apply("{D}/patch.json"), {0}, "", {}, {"applied.onnx"}},
      // 11. Output paths checked before any work.
      {"EmptyOutput", "11", repair("-o ''"), {2}, "empty file name"},
      {"EmptyJson", "11", compare("--json ''"), {2}, "empty file name"},
      {"EmptyReport", "11", compare("--report ''"), {2}, "empty file name"},
      {"EmptyTruth", "11", inject("{D}/cnn.onnx", "-o {D}/x.onnx --truth ''"), {2}, "empty file name", {"x.onnx"}},
      {"JsonInProc", "11", compare("--json /proc/fetafix-x.json"), {2}, "/proc/fetafix-x.json: cannot write"},
      {"RepairOutputInProcFailsBeforeRunning", "11", repair("-o /proc/fetafix-x.onnx --patch {D}/p.json"), {2},
       "virtual file system", {"p.json"}},
      {"JsonInAMissingFolder", "ok", compare("--json {D}/no/such/out.json"), {2}, "does not exist"},
      {"ExplorerFolderIsAFile", "11", localize("--model-explorer {D}/existing.txt"), {2}, "must be a folder"},
      {"ExplorerFolderInProc", "11", localize("--model-explorer /proc/fetafix-ex"), {2}, "cannot create"},
      {"OutputIntoAnUnwritableFolder", "ok", compare("--json {D}/locked/out.json"), {2}, "not writable", {}, {},
       testing::unprivileged_shell_prefix()},
      // 12. Misc.
      {"InjectCyclicModel", "12", inject("{D}/cyclic.onnx", "-o {D}/x.onnx"), {2}, "cycle",
       {"x.onnx", "x.truth.json"}},
      {"CompareCyclicTarget", "12", "compare {D}/source.onnx {D}/cyclic.onnx --images {D}/images --quiet", {2},
       "cyclic.onnx: not a valid model"},
      {"ApplyAFolderAsPatch", "12", apply("{D}/images"), {2}, "is a folder", {"applied.onnx"}},
      {"ApplyAFifoAsPatch", "12", apply("{D}/fifo"), {2}, "a FIFO", {"applied.onnx"}},
      {"NegativeDimValue", "12", "compare {D}/source.onnx {D}/negdim.onnx --images {D}/images --quiet", {2},
       "declares the dim -5"},
      {"InjectNegativeDimValue", "12", inject("{D}/negdim.onnx", "-o {D}/x.onnx"), {2}, "-5", {"x.onnx"}},
      {"UnreadableSubfolderIsNamed", "12", compare("", "images_unreadable"), {2}, "images_unreadable/private'", {},
       {}, testing::unprivileged_shell_prefix()},
      {"UnreadableDataSubfolderIsNamed", "12", data_compare("arrays_unreadable", ""), {2},
       "cannot list sample folder '{D}/arrays_unreadable/private'", {}, {}, testing::unprivileged_shell_prefix()},
      {"InputConstantIsAFifo", "12", data_compare("arrays", "--input features={D}/fifo"), {2},
       "--input features: {D}/fifo: is a FIFO"},
      {"InputConstantIsAFolder", "12", data_compare("arrays", "--input features={D}/arrays"), {2}, "is a folder"},
      {"InputConstantMissing", "ok", data_compare("arrays", "--input features={D}/nope.npy"), {2},
       "--input features: {D}/nope.npy: file not found"},
      {"InputConstantWithoutAName", "ok", data_compare("arrays", "--input ={D}/const.npy"), {2},
       "expected NAME=FILE.npy"},
      // Already handled well; kept that way.
      {"MissingModel", "ok", "compare {D}/nope.onnx {D}/target.onnx --images {D}/images --quiet", {2}, "nope.onnx"},
      {"CorruptModel", "ok", "compare {D}/source.onnx {D}/corrupt.onnx --images {D}/images --quiet", {2},
       "corrupt.onnx: not an ONNX model"},
      {"EmptyModel", "ok", "compare {D}/source.onnx {D}/empty.onnx --images {D}/images --quiet", {2},
       "empty.onnx: empty file"},
      {"ModelIsAFolder", "ok", "compare {D}/source.onnx {D}/images --images {D}/images --quiet", {2}, "is a folder"},
      {"ModelIsAFifo", "ok", "compare {D}/source.onnx {D}/fifo --images {D}/images --quiet", {2}, "fifo"},
      {"ExternalDataOutsideTheFolder", "ok",
       "compare {D}/source.onnx {D}/models/escape.onnx --images {D}/images --quiet", {2}, "outside the model's folder"},
      {"ModelThatCannotTakeAnImage", "ok", "compare {D}/source.onnx {D}/vector.onnx --images {D}/images --quiet", {2},
       "vector.onnx"},
      {"EmptyImageFolder", "ok", compare("", "images_none"), {2}, "holds no .jpg"},
      {"EmptyDataFolder", "ok", data_compare("images_none", ""), {2}, "holds no sample"},
      {"MissingDataFolder", "ok", data_compare("arrays_missing", ""), {2}, "sample folder '{D}/arrays_missing' does not exist"},
      {"NpyOfTheWrongShape", "ok", data_compare("arrays_wrong_shape", ""), {2}, "odd.npy"},
      {"CorruptNpz", "ok", data_compare("arrays_corrupt", "--strict"), {2}, "junk.npz: not a readable .npz"},
      {"MissingImageFolder", "ok", compare("", "images_missing"), {2}, "does not exist"},
      {"UnknownPreset", "ok",
       "compare {D}/source.onnx {D}/target.onnx --images {D}/images --quiet --source-preprocess nonsense", {2},
       "nonsense"},
      {"PresetFileNotJson", "ok",
       "compare {D}/source.onnx {D}/target.onnx --images {D}/images --quiet --source-preprocess {D}/not_json.json",
       {2}, "not valid JSON"},
      {"PresetOverrideNotJson", "ok", compare("--target-preprocess-override '{nope'"), {2}, "not a JSON object"},
      {"TopKZero", "ok", compare("--top-k 0"), {2}, "--top-k"},
      {"UnknownSubcommand", "ok", "frobnicate", {2}, "subcommand"},
      {"LocalizeBadAlpha", "ok", localize("--alpha 2"), {2}, "--alpha"},
      {"ApplyPatchNotJson", "ok", apply("{D}/not_json.json"), {2}, "not valid JSON", {"applied.onnx"}},
      {"ApplyPatchForAnotherModel", "ok", apply("{D}/unknown_node.json"), {2}, "does not apply", {"applied.onnx"}},
      {"InjectUnknownFault", "ok", inject("{D}/cnn.onnx", "-o {D}/x.onnx --fault nope:nothing"), {2}, "nope",
       {"x.onnx"}},
      {"CompareWritesJson", "ok", compare("--json {D}/out.json"), {1}, "", {}, {"out.json"}, "", "fetafix.compare/2"},
      {"DataCompareWritesJson", "ok", data_compare("arrays", "--json {D}/out.json"), {0}, "", {}, {"out.json"}, "",
       "fetafix.compare/2"},
      {"InjectWritesModelAndTruth", "ok", inject("{D}/cnn.onnx", "-o {D}/x.onnx"), {0}, "", {},
       {"x.onnx", "x.truth.json"}},
  };
}

// --------------------------------------------------------------------------- the fixture files

void save(const onnx::ModelProto& m, const fs::path& path) {
  ASSERT_TRUE(model::save_model(m, path).ok()) << path;
}

onnx::ModelProto classifier_with_input(std::vector<int64_t> shape) {
  GraphBuilder g("shaped", 13);
  std::string x = g.input("image", DType::kFloat32, shape);
  x = g.node("GlobalAveragePool", "pool", {x});
  g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)}, "scores");
  g.output("scores", DType::kFloat32, {-1, 3});
  return g.build();
}

onnx::ModelProto nan_classifier() {
  GraphBuilder g("nan_scores", 13);
  std::string x = g.input("image", DType::kFloat32, {-1, 3, 32, 32});
  x = g.node("GlobalAveragePool", "pool", {x});
  x = g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)});
  x = g.node("Neg", "negate", {x});
  g.node("Log", "log_of_negative", {x}, {}, "scores");
  g.output("scores", DType::kFloat32, {-1, 3});
  return g.build();
}

// Proto-level models load_model refuses (GraphBuilder would not build them).
void write_invalid_models(const fs::path& d) {
  GraphBuilder c("cyclic", 13);
  c.input("image", DType::kFloat32, {-1, 3, 32, 32});
  c.node("Add", "a", {"image", "b_out"}, {}, "a_out");
  c.node("Relu", "b", {"a_out"}, {}, "b_out");
  c.output("b_out", DType::kFloat32, {-1, 3, 32, 32});
  testing::write_file(d / "cyclic.onnx", model::serialize_model(c.build()));
  auto neg = testing::dominant_channel_model(false);
  neg.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)
      ->set_dim_value(-5);
  testing::write_file(d / "negdim.onnx", model::serialize_model(neg));
  auto escape = testing::dominant_channel_model(false);
  auto* w = escape.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(1);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* loc = w->add_external_data();
  loc->set_key("location");
  loc->set_value("../secret.bin");
  fs::create_directories(d / "models");
  testing::write_file(d / "secret.bin", std::string(4, '\0'));
  testing::write_file(d / "models" / "escape.onnx", model::serialize_model(escape));
  testing::write_file(d / "corrupt.onnx", "\x08\x07garbage that is not a model");
  testing::write_file(d / "empty.onnx", "");
}

std::string patch_with(const std::string& edit) {
  return R"({"schema": "fetafix.patch/1", "preprocess": null, "edits": [)" + edit + "]}";
}

void write_patches(const fs::path& d) {
  testing::write_file(d / "patch.json", patch_with(R"({"kind": "set_attribute", "node": "conv1",
      "attribute": {"name": "pads", "ints": ["1", "1", "1", "1"], "type": "INTS"}})"));
  testing::write_file(d / "bad_pads.json", patch_with(R"({"kind": "set_attribute", "node": "conv1",
      "attribute": {"name": "pads", "ints": ["1", "1", "1", "1", "1"], "type": "INTS"}})"));
  testing::write_file(d / "float_ints.json", patch_with(R"({"kind": "set_attribute", "node": "conv1",
      "attribute": {"name": "pads", "ints": ["1", "1", "1", "1"], "type": "FLOAT"}})"));
  testing::write_file(d / "wrong_shape.json", patch_with(R"({"kind": "set_weight", "value": "conv1_w",
      "tensor": {"dtype": "float32", "dims": [1], "raw_base64": "AACAPw=="}})"));
  testing::write_file(d / "unknown_node.json", patch_with(R"({"kind": "remove_attribute", "node": "conv99",
      "attribute": "pads"})"));
  testing::write_file(d / "not_json.json", "{\"schema\": ");
  testing::write_file(d / "preset.json", R"({"base": "raw"})");
}

void write_image_folders(const fs::path& d) {
  const uint8_t colours[][3] = {{200, 50, 50}, {50, 200, 50}, {50, 50, 200}, {190, 40, 60}};
  auto png = [&](const fs::path& path, int i) {
    fs::create_directories(path.parent_path());
    testing::write_png_rgb(path, 24, 24, testing::textured_solid(24, 24, colours[i][0], colours[i][1], colours[i][2], i + 1));
  };
  for (int i = 0; i < 4; ++i) png(d / "images" / ("img" + std::to_string(i) + ".png"), i);
  fs::create_directories(d / "images" / "sub");
  for (const char* folder : {"val", "images_latin1", "images_bomb", "images_jpeg_bomb", "images_scans",
                             "images_dangling", "images_loop", "images_fifo", "images_unreadable"})
    png(d / folder / "ok.png", 1);
  png(d / "images_latin1" / "caf\xe9.png", 0);
  png(d / "images_latin1" / "sub\xff" / "x.png", 2);
  testing::write_file(d / "images_bomb" / "bomb.png", testing::png_declaring(20000, 20000));
  testing::write_file(d / "images_jpeg_bomb" / "bomb.jpg", testing::jpeg_declaring(60000, 60000));
  testing::write_file(d / "images_scans" / "scans.jpg", testing::jpeg_with_631_scans());
  fs::create_symlink(d / "images_dangling" / "gone.jpg", d / "images_dangling" / "dangling.jpg");
  fs::create_symlink(d / "images_loop" / "loop.jpg", d / "images_loop" / "loop.jpg");
  ASSERT_TRUE(testing::make_fifo(d / "images_fifo" / "pipe.png"));
  png(d / "images_unreadable" / "private" / "x.png", 0);
  fs::permissions(d / "images_unreadable" / "private", fs::perms::none);
  fs::create_directories(d / "images_none");
  fs::create_hard_link(d / "images" / "img0.png", d / "hardlink.png");
  fs::create_symlink(d / "images" / "img1.png", d / "symlink.png");
}

// An .npy whose header declares `shape` (numpy's "(a, b)" text) and that holds no data.
std::string npy_declaring(const std::string& shape) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY\x01";
  bytes += '\0';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  return bytes + header;
}

void write_sample_folders(const fs::path& d) {
  auto npy = [](const fs::path& path, std::vector<int64_t> shape, float value) {
    fs::create_directories(path.parent_path());
    Tensor t(DType::kFloat32, shape);
    auto* v = reinterpret_cast<float*>(t.bytes.data());
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = value + static_cast<float>(i);
    testing::write_file(path, data::encode_npy(t));
  };
  npy(d / "arrays" / "a.npy", {1, 10}, 0);
  npy(d / "arrays" / "b.npy", {1, 10}, -5);
  fs::create_directories(d / "arrays" / "sub");
  npy(d / "const.npy", {1, 10}, 1);
  fs::create_hard_link(d / "arrays" / "a.npy", d / "hardlink.npy");
  for (const char* folder : {"arrays_huge", "arrays_big", "arrays_latin1", "arrays_dangling", "arrays_fifo",
                             "arrays_unreadable", "arrays_wrong_shape", "arrays_corrupt"})
    npy(d / folder / "ok.npy", {1, 10}, 2);
  testing::write_file(d / "arrays_huge" / "huge.npy", npy_declaring("(1048576, 1048576)"));
  npy(d / "arrays_big" / "big.npy", {1, 1000}, 0);
  npy(d / "arrays_latin1" / "caf\xe9.npy", {1, 10}, 3);
  fs::create_symlink(d / "arrays_dangling" / "gone.npy", d / "arrays_dangling" / "dangling.npy");
  ASSERT_TRUE(testing::make_fifo(d / "arrays_fifo" / "pipe.npz"));
  npy(d / "arrays_unreadable" / "private" / "x.npy", {1, 10}, 0);
  fs::permissions(d / "arrays_unreadable" / "private", fs::perms::none);
  npy(d / "arrays_wrong_shape" / "odd.npy", {1, 7}, 0);
  testing::write_file(d / "arrays_corrupt" / "junk.npz", "not a zip");
  const std::vector<float> tone(8000, 0.25f);
  for (const char* folder : {"waves", "waves_fifo"}) {
    fs::create_directories(d / folder);
    ASSERT_TRUE(data::write_wav(d / folder / "tone.wav", tone, 8000).ok());
  }
  ASSERT_TRUE(testing::make_fifo(d / "waves_fifo" / "pipe.wav"));
}

void write_fixture(const fs::path& d) {
  save(testing::dominant_channel_model(false), d / "source.onnx");
  save(testing::dominant_channel_model(true), d / "target.onnx");
  save(testing::dominant_channel_model(true), d / "mod\xe9l.onnx");
  save(testing::build_cnn(), d / "cnn.onnx");
  testing::CnnOptions fault;
  fault.scaled_layer = 1;
  save(testing::build_cnn(fault), d / "cnn_fault.onnx");
  save(classifier_with_input({-1, 3, 1000000, 1000000}), d / "huge_input.onnx");
  save(classifier_with_input({1000000, 3, 32, 32}), d / "huge_batch.onnx");
  save(nan_classifier(), d / "nan_target.onnx");
  save(classifier_with_input({-1, 3, -1, -1}), d / "dynamic.onnx");
  GraphBuilder v("vector", 13);
  v.input("features", DType::kFloat32, {-1, 10});
  v.node("Relu", "relu", {"features"}, {}, "out");
  v.output("out", DType::kFloat32, {-1, 10});
  save(v.build(), d / "vector.onnx");
  GraphBuilder w("wave", 13);
  w.input("audio", DType::kFloat32, {-1, -1});
  w.node("Relu", "relu", {"audio"}, {}, "out");
  w.output("out", DType::kFloat32, {-1, -1});
  save(w.build(), d / "wave.onnx");
  write_sample_folders(d);
  write_invalid_models(d);
  write_patches(d);
  write_image_folders(d);
  ASSERT_TRUE(testing::make_fifo(d / "fifo"));
  ASSERT_TRUE(testing::make_socket(d / "socket"));
  testing::make_char_device(d / "chardev");  // root only; rows that need it are skipped otherwise
  fs::create_symlink(d / "fifo", d / "link_to_fifo");
  fs::create_symlink(d / "target.onnx", d / "link_to_target.onnx");
  testing::write_file(d / "existing.txt", "x");
  fs::create_directories(d / "ex");
  fs::create_directories(d / "locked");
  fs::permissions(d / "locked", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                    fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
}

// --------------------------------------------------------------------------- the checks

// What a file is, enough to tell it was replaced or changed: its type, device numbers, link
// target or (regular files) content.
struct FileState {
  mode_t type = 0;
  dev_t rdev = 0;
  std::string content;
  bool operator==(const FileState&) const = default;
};

std::map<std::string, FileState> snapshot(const fs::path& root) {
  std::map<std::string, FileState> files;
  std::vector<fs::path> pending{root};
  while (!pending.empty()) {
    const fs::path dir = pending.back();
    pending.pop_back();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      struct stat st {};
      if (::lstat(entry.path().c_str(), &st) != 0) continue;
      FileState s{st.st_mode & S_IFMT, st.st_rdev, ""};
      if (S_ISREG(st.st_mode)) s.content = testing::slurp(entry.path());
      if (S_ISLNK(st.st_mode)) s.content = fs::read_symlink(entry.path(), ec).string();
      if (S_ISDIR(st.st_mode)) pending.push_back(entry.path());
      files[entry.path().lexically_relative(root).string()] = std::move(s);
    }
  }
  return files;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

bool is_inside(const std::string& relative, const std::vector<std::string>& outputs) {
  for (const auto& o : outputs)
    if (relative == o || relative.rfind(o + "/", 0) == 0) return true;
  return false;
}

class BadInputs : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputs, AnswerClearlyAndLeaveEveryFileAlone) {
  const BadInput& c = GetParam();
  ASSERT_FALSE(testing::fetafix_bin().empty()) << "FETAFIX_BIN is not set (run through ctest)";
  if (c.root_only && !testing::running_as_root()) GTEST_SKIP() << "needs root to make a character device";
  const fs::path base = testing::temp_dir(std::string("bad_input_") + c.name);
  const fs::path d = base / "run";
  fs::create_directories(d);
  write_fixture(d);
  if (::testing::Test::HasFatalFailure()) return;
  const auto before = snapshot(d);

  const std::string command = c.prefix + " timeout 120 " + testing::shell_quoted(testing::fetafix_bin()) + " " +
                              replace_all(c.command, "{D}", d.string());
  const fs::path out = base / "stdout.txt", err = base / "stderr.txt";
  const int status = std::system(("(" + command + ") >" + testing::shell_quoted(out) + " 2>" +
                                  testing::shell_quoted(err)).c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string stdout_text = testing::slurp(out), stderr_text = testing::slurp(err);
  SCOPED_TRACE("group " + std::string(c.group) + ": " + command + "\nstdout: " + stdout_text + "\nstderr: " + stderr_text);

  EXPECT_NE(code, 4) << "internal error";
  EXPECT_NE(code, 124) << "timed out";
  EXPECT_NE(std::find(c.exit_codes.begin(), c.exit_codes.end(), code), c.exit_codes.end()) << "exit code " << code;
  if (code == 2) {  // refused before any work, or failed without a word of results
    EXPECT_EQ(std::count(stderr_text.begin(), stderr_text.end(), '\n'), 1) << "one line on stderr";
    EXPECT_EQ(stderr_text.rfind("fetafix: ", 0), 0u);
    EXPECT_EQ(stdout_text, "");
  }
  const std::string stderr_has = replace_all(c.stderr_has, "{D}", d.string());
  if (!stderr_has.empty()) EXPECT_NE(stderr_text.find(stderr_has), std::string::npos) << "wanted: " << stderr_has;
  EXPECT_EQ(stdout_text.find("-nan"), std::string::npos);

  const auto after = snapshot(d);
  for (const auto& [file, state] : before) {
    auto it = after.find(file);
    ASSERT_NE(it, after.end()) << file << " was removed";
    if (!is_inside(file, c.creates)) EXPECT_TRUE(it->second == state) << file << " was changed";
  }
  for (const auto& [file, state] : after)
    if (!before.count(file)) EXPECT_TRUE(is_inside(file, c.creates)) << file << " was written";
  for (const auto& file : c.must_not_exist) EXPECT_FALSE(after.count(file)) << file << " exists";
  for (const auto& file : c.creates) EXPECT_TRUE(after.count(file)) << file << " was not written";
  if (!c.output_has.empty() && !c.creates.empty()) {
    const std::string text = testing::slurp(d / c.creates.front());
    EXPECT_NE(text.find(c.output_has), std::string::npos) << c.creates.front() << " lacks " << c.output_has;
  }
  for (const char* folder : {"images_unreadable", "arrays_unreadable"})
    fs::permissions(d / folder / "private", fs::perms::owner_all);  // so the next run can clean up
}

INSTANTIATE_TEST_SUITE_P(Matrix, BadInputs, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<BadInput>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace fetafix
