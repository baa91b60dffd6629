#include "data/npz.h"

#include <ctime>
#include <fstream>
#include <memory>
#include <set>

#include <zip.h>

#include "common/fs.h"

namespace fetafix::data {
namespace fs = std::filesystem;

namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

std::string zip_message(int code) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string s = zip_error_strerror(&e);
  zip_error_fini(&e);
  return s;
}

Result<Tensor> read_entry(zip_t* zip, zip_uint64_t index, const zip_stat_t& st, const std::string& what,
                          const ArrayLimits& limits) {
  std::unique_ptr<zip_file_t, ZipFileCloser> file(zip_fopen_index(zip, index, 0));
  if (!file) return make_error("{}: cannot open the entry: {}", what, zip_strerror(zip));
  std::vector<std::byte> bytes(st.size);
  const zip_int64_t got = st.size ? zip_fread(file.get(), bytes.data(), st.size) : 0;
  if (got < 0) return make_error("{}: cannot read the entry: {}", what, zip_file_strerror(file.get()));
  if (static_cast<zip_uint64_t>(got) != st.size)
    return make_error("{}: the entry holds {} bytes, the archive says {}", what, got, st.size);
  return parse_npy(bytes, what, limits);
}

}  // namespace

Result<std::vector<NamedArray>> parse_npz(std::span<const std::byte> bytes, const std::string& what,
                                          const ArrayLimits& limits) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (!source) return make_error("{}: cannot read: {}", what, zip_error_strerror(&error));
  std::unique_ptr<zip_t, ZipCloser> zip(zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (!zip) {
    zip_source_free(source);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    return make_error("{}: not a readable .npz (zip) file: {}", what, why);
  }
  zip_error_fini(&error);
  const zip_int64_t entries = zip_get_num_entries(zip.get(), 0);
  if (entries < 0 || static_cast<size_t>(entries) > kMaxNpzEntries)
    return make_error("{}: {} entries, over the limit of {} (kMaxNpzEntries)", what, entries, kMaxNpzEntries);
  // Sizes first, from the central directory: nothing is inflated when they are absurd.
  std::vector<zip_stat_t> stats(static_cast<size_t>(entries));
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t& st = stats[static_cast<size_t>(i)];
    if (zip_stat_index(zip.get(), static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) ||
        !(st.valid & ZIP_STAT_SIZE))
      return make_error("{}: cannot read entry {} of the archive", what, i);
    const std::string name = st.name;
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
      return make_error("{}: entry '{}' is not an .npy array (an .npz holds only .npy files)", what, name);
    if (st.size > limits.max_array_bytes + kMaxNpyHeaderBytes + 16)
      return make_error("{}: array '{}' is {} bytes, {}", what, name.substr(0, name.size() - 4), st.size,
                        array_limit_text(limits));
    total += st.size;
    if (total > limits.max_sample_bytes)
      return make_error("{}: its arrays together are {}", what, sample_limit_text(limits));
  }
  std::vector<NamedArray> arrays;
  std::set<std::string> seen;
  for (zip_int64_t i = 0; i < entries; ++i) {
    const zip_stat_t& st = stats[static_cast<size_t>(i)];
    std::string name(st.name);
    name.resize(name.size() - 4);
    if (!seen.insert(name).second) return make_error("{}: array '{}' appears twice", what, name);
    FETAFIX_ASSIGN_OR_RETURN(Tensor t, read_entry(zip.get(), static_cast<zip_uint64_t>(i), st,
                                                  fmt::format("{}: array '{}'", what, name), limits));
    arrays.push_back({std::move(name), std::move(t)});
  }
  return arrays;
}

Result<std::vector<NamedArray>> read_npz(const fs::path& path, const ArrayLimits& limits) {
  FETAFIX_TRY_STATUS(check_regular_file(path));  // a FIFO never hangs the run, a folder is named as one
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return make_error("{}: cannot read: {}", path.string(), ec.message());
  if (size > limits.max_sample_bytes)
    return make_error("{}: {} bytes, {}", path.string(), size, sample_limit_text(limits));
  std::vector<std::byte> bytes(size);
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    return make_error("{}: cannot read the file", path.string());
  return parse_npz(bytes, path.string(), limits);
}

namespace {
// 1980-01-01 00:00, the earliest DOS time (numpy's for every entry). Zip times are local fields,
// so the time_t is made from local fields too: the same bytes in every time zone.
time_t fixed_zip_time() {
  std::tm fields{};
  fields.tm_year = 80;
  fields.tm_mday = 1;
  fields.tm_isdst = -1;
  return std::mktime(&fields);
}
}  // namespace

Status write_npz(const fs::path& path, const std::vector<NamedArray>& arrays, bool compress) {
  int code = 0;
  std::unique_ptr<zip_t, ZipCloser> zip(zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code));
  if (!zip) return make_error("{}: cannot create: {}", path.string(), zip_message(code));
  std::vector<std::string> images;  // zip_close reads the buffers: keep them alive until then
  images.reserve(arrays.size());
  for (const auto& a : arrays) {
    images.push_back(encode_npy(a.value));
    zip_source_t* src = zip_source_buffer(zip.get(), images.back().data(), images.back().size(), 0);
    const zip_int64_t index = src ? zip_file_add(zip.get(), (a.name + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8) : -1;
    if (index < 0) {
      if (src) zip_source_free(src);
      return make_error("{}: cannot add array '{}': {}", path.string(), a.name, zip_strerror(zip.get()));
    }
    zip_set_file_compression(zip.get(), static_cast<zip_uint64_t>(index), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    // libzip stamps each entry with the current time; a fixed one (numpy's, 1980-01-01) makes the
    // same arrays give the same bytes (the corpus is compared byte for byte).
    zip_file_set_mtime(zip.get(), static_cast<zip_uint64_t>(index), fixed_zip_time(), 0);
  }
  if (zip_close(zip.get()) != 0) return make_error("{}: cannot write: {}", path.string(), zip_strerror(zip.get()));
  zip.release();
  return {};
}

}  // namespace fetafix::data
