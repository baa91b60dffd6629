// Opens a generated report in headless Chromium (Debian's `chromium`; FETAFIX_CHROMIUM names
// another binary): the page's own script must run without errors and record what rendered in
// #render-check, the expected sections and numbers must be in the rendered DOM, and a
// screenshot must come out. Skipped when no Chromium is installed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <regex>

#include "data/image.h"
#include "report/html.h"
#include "report_fixture.h"
#include "support/assets.h"
#include "support/cli.h"

namespace fetafix::report {
namespace {
namespace fs = std::filesystem;
using fetafix::testing::shell_quoted;
using fetafix::testing::slurp;

std::string chromium_binary() {
  if (const char* env = std::getenv("FETAFIX_CHROMIUM"); env && *env) return env;
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(p)) return p;
  return "";
}

struct BrowserRun {
  int exit_code = -1;
  std::string out, err;
};

// Headless, sandbox-less (containers), and with everything that would reach the network off.
BrowserRun run_chromium(const std::string& args, const fs::path& dir) {
  const auto out = dir / "chromium.out", err = dir / "chromium.err";
  const std::string cmd =
      "timeout 120 " + shell_quoted(chromium_binary()) +
      " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking"
      " --disable-component-update --disable-sync --no-first-run --disable-extensions --disable-default-apps"
      " --mute-audio --no-default-browser-check --enable-logging=stderr --v=0 --user-data-dir=" +
      shell_quoted(dir / "profile") + " " + args + " >" + shell_quoted(out) + " 2>" + shell_quoted(err);
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

std::string attribute(const std::string& dom, const std::string& element_id, const std::string& name) {
  const size_t at = dom.find("id=\"" + element_id + "\"");
  if (at == std::string::npos) return "";
  const size_t end = dom.find('>', at);
  const std::string tag = dom.substr(at, end - at);
  std::smatch m;
  if (std::regex_search(tag, m, std::regex(name + "=\"([^\"]*)\""))) return m[1];
  return "";
}

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (chromium_binary().empty()) GTEST_SKIP() << "no Chromium (install Debian's chromium, or set FETAFIX_CHROMIUM)";
    dir_ = fetafix::testing::temp_dir(std::string("report_browser_") +
                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    page_ = dir_ / "report.html";
    auto st = write_report(page_, testing::repair_run().input());
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  std::string url() const { return shell_quoted("file://" + fs::absolute(page_).string()); }

  fs::path dir_, page_;
};

TEST_F(BrowserTest, RendersWithoutErrorsAndShowsTheSectionsAndNumbers) {
  const auto run = run_chromium("--virtual-time-budget=5000 --dump-dom " + url(), dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string& dom = run.out;
  ASSERT_NE(dom.find("id=\"render-check\""), std::string::npos) << dom.substr(0, 2000);
  // The inline script ran to the end, after the load event, and no script error was counted.
  EXPECT_EQ(attribute(dom, "render-check", "data-status"), "loaded") << run.err;
  EXPECT_EQ(attribute(dom, "render-check", "data-errors"), "0") << attribute(dom, "render-check", "data-error-messages");
  EXPECT_EQ(attribute(dom, "render-check", "data-broken-images"), "0");
  // Chromium's console log has nothing from the page: no uncaught error, no blocked fetch.
  EXPECT_EQ(run.err.find(":CONSOLE"), std::string::npos) << run.err;

  const auto& r = testing::repair_run();
  EXPECT_EQ(attribute(dom, "render-check", "data-sections"), "7");
  EXPECT_EQ(attribute(dom, "render-check", "data-findings"),
            std::to_string(r.finding_cards()));
  EXPECT_GE(std::stoi("0" + attribute(dom, "render-check", "data-svg")), 4);
  EXPECT_GT(std::stoi("0" + attribute(dom, "render-check", "data-images")), 0);
  for (const char* heading : {">Summary</h2>", ">Repair history</h2>", ">Layer ranking</h2>", ">Findings, side by side</h2>",
                              ">Images that disagreed</h2>", ">The patch</h2>"})
    EXPECT_NE(dom.find(heading), std::string::npos) << heading;
  EXPECT_NE(dom.find(fmt::format("{} of {} images disagree on top-1", r.repair.initial_disagreeing, r.repair.images)),
            std::string::npos);
  // The filter script counted the findings into its buttons.
  EXPECT_NE(dom.find(fmt::format("All<span class=\"count\">{}</span>", r.finding_cards())),
            std::string::npos);
}

TEST_F(BrowserTest, TakesAScreenshot) {
  const fs::path shot = dir_ / "report.png";
  const auto run = run_chromium("--hide-scrollbars --window-size=1280,2200 --virtual-time-budget=5000 --screenshot=" +
                                    shell_quoted(shot) + " " + url(),
                                dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_TRUE(fs::exists(shot)) << run.err;
  auto img = data::decode_image(shot);
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->width, 1280);
  EXPECT_EQ(img->height, 2200);
  // Something was drawn: the header's dark band on top, a light page below, many distinct colours.
  auto px = [&](int x, int y, int c) { return int(img->rgb[(size_t(y) * img->width + x) * 3 + c]); };
  EXPECT_LT(px(40, 20, 0) + px(40, 20, 1) + px(40, 20, 2), 3 * 110);
  EXPECT_GT(px(10, 1500, 0) + px(10, 1500, 1) + px(10, 1500, 2), 3 * 200);
  std::set<int> colours;
  for (size_t i = 0; i + 2 < img->rgb.size(); i += 3 * 97)
    colours.insert((img->rgb[i] >> 3) << 10 | (img->rgb[i + 1] >> 3) << 5 | (img->rgb[i + 2] >> 3));
  EXPECT_GT(colours.size(), 50u);
}

// The two-round page (round headings between the finding cards, a WB* group, a screened-out
// step) renders with the filter script counting every card.
TEST_F(BrowserTest, ATwoRoundRepairRendersWithoutErrors) {
  const repair::RepairResult r = testing::two_round_repair();
  const fs::path page = dir_ / "two_rounds.html";
  ASSERT_TRUE(write_report(page, testing::two_round_input(r)).ok());
  const auto run = run_chromium("--virtual-time-budget=5000 --dump-dom " +
                                    shell_quoted("file://" + fs::absolute(page).string()),
                                dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(attribute(run.out, "render-check", "data-status"), "loaded") << run.err;
  EXPECT_EQ(attribute(run.out, "render-check", "data-errors"), "0");
  EXPECT_EQ(attribute(run.out, "render-check", "data-findings"), "4");
  EXPECT_NE(run.out.find("All<span class=\"count\">4</span>"), std::string::npos);
  EXPECT_NE(run.out.find("id=\"findings-round-2\""), std::string::npos);
  EXPECT_EQ(run.err.find(":CONSOLE"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace fetafix::report
