#include "support/ort_messages.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <onnxruntime_cxx_api.h>

#include "model/model.h"
#include "support/assets.h"

namespace fetafix::testing {

std::string ort_load_messages(const onnx::ModelProto& model) {
  const std::string bytes = model::serialize_model(model);
  const auto log = temp_dir("ort_messages") / "stderr.txt";
  std::fflush(stderr);
  std::cerr.flush();
  const int saved = dup(2);
  FILE* sink = std::fopen(log.c_str(), "w");
  dup2(fileno(sink), 2);
  std::string failure;
  try {
    static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "fetafix-test");
    Ort::SessionOptions options;
    options.SetLogSeverityLevel(ORT_LOGGING_LEVEL_WARNING);
    Ort::Session session(env, bytes.data(), bytes.size(), options);
  } catch (const Ort::Exception& e) {
    failure = std::string("load failed: ") + e.what();
  }
  std::fflush(stderr);
  std::cerr.flush();
  dup2(saved, 2);
  close(saved);
  std::fclose(sink);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return failure.empty() ? text.str() : failure + "\n" + text.str();
}

}  // namespace fetafix::testing
