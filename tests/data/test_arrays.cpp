// .npy and .npz: files numpy wrote (tests/data/fixtures/arrays/make_arrays.py), headers that
// must be refused, limits checked before allocation, and our writer read back.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "data/npy.h"
#include "data/npz.h"
#include "fixture_files.h"
#include "support/assets.h"

namespace fetafix::data {
namespace fs = std::filesystem;

namespace {

fs::path arrays_dir() { return testing::fixtures_dir() / "arrays"; }

std::vector<std::byte> as_bytes(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// A .npy image with a hand-written header (padded like numpy's) and `data_bytes` zero bytes.
std::vector<std::byte> npy_with_header(const std::string& dict, size_t data_bytes, char major = 1) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += major;
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  if (major > 1) out += std::string(2, '\0');
  out += header;
  out += std::string(data_bytes, '\0');
  return as_bytes(out);
}

std::string error_of(const Result<Tensor>& r) { return r.ok() ? std::string("(no error)") : r.error().message; }

}  // namespace

TEST(Npy, ReadsWhatNumpyWrites) {
  auto f32 = read_npy(arrays_dir() / "f32_2x3.npy");
  ASSERT_TRUE(f32.ok()) << f32.error().message;
  EXPECT_EQ(f32->dtype, DType::kFloat32);
  EXPECT_EQ(f32->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f32->to_float(), (std::vector<float>{0, 1, 2, 3, 4, 5}));

  auto f16 = read_npy(arrays_dir() / "f16_4.npy");
  ASSERT_TRUE(f16.ok()) << f16.error().message;
  EXPECT_EQ(f16->dtype, DType::kFloat16);
  EXPECT_EQ(f16->to_float(), (std::vector<float>{0.5f, -1, 2, 65504}));

  auto scalar = read_npy(arrays_dir() / "i64_scalar.npy");
  ASSERT_TRUE(scalar.ok()) << scalar.error().message;
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->data<int64_t>()[0], 42);

  auto flags = read_npy(arrays_dir() / "bool_3.npy");
  ASSERT_TRUE(flags.ok()) << flags.error().message;
  EXPECT_EQ(flags->dtype, DType::kBool);
  EXPECT_EQ(flags->to_float(), (std::vector<float>{1, 0, 1}));

  auto bytes = read_npy(arrays_dir() / "u8_2x2x3.npy");
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(bytes->shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(bytes->data<uint8_t>()[11], 11);

  auto v2 = read_npy(arrays_dir() / "v2_f32_2.npy");
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(v2->to_float(), (std::vector<float>{1.5f, 2.5f}));
}

TEST(Npy, FortranOrderIsReorderedToC) {
  auto t = read_npy(arrays_dir() / "fortran_3x4.npy");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 4}));
  std::vector<float> expected(12);
  for (int i = 0; i < 12; ++i) expected[i] = static_cast<float>(i);  // arange(12).reshape(3, 4), C order
  EXPECT_EQ(t->to_float(), expected);
}

TEST(Npy, RefusesBigEndianAndObjectArraysNamingTheFile) {
  auto big = read_npy(arrays_dir() / "big_endian.npy");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("big_endian.npy"), std::string::npos);
  EXPECT_NE(big.error().message.find("big-endian"), std::string::npos) << big.error().message;
  auto object = read_npy(arrays_dir() / "object.npy");
  ASSERT_FALSE(object.ok());
  EXPECT_NE(object.error().message.find("unsupported array dtype '|O'"), std::string::npos) << object.error().message;
  EXPECT_EQ(object.error().kind, ErrorKind::kBadInput);
}

TEST(Npy, StrictHeaderParsing) {
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  EXPECT_TRUE(parse_npy(npy_with_header(good, 8), "t.npy").ok());
  EXPECT_TRUE(parse_npy(npy_with_header("{\"shape\": (2,), \"descr\": \"<f4\", \"fortran_order\": False}", 8), "t.npy").ok());
  EXPECT_TRUE(parse_npy(npy_with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1L, 2L), }", 16), "t").ok());
  EXPECT_TRUE(parse_npy(npy_with_header(good, 8, 2), "t.npy").ok());
  const std::pair<std::string, std::string> bad[] = {
      {"{'descr': '<f4', 'shape': (2,), }", "needs the keys"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected or repeated key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "repeated key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", "expected True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "expected a dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "expected '('"},
      {"{'descr': '<U5', 'fortran_order': False, 'shape': (2,)}", "unsupported array dtype '<U5'"},
      {"{'descr': '|f4', 'fortran_order': False, 'shape': (2,)}", "unsupported array dtype '|f4'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "followed only by spaces"},
      {"{'descr': '<f4\\', 'fortran_order': False, 'shape': (2,)}", "unsupported character"},
  };
  for (const auto& [dict, expected] : bad) {
    auto r = parse_npy(npy_with_header(dict, 8), "t.npy");
    ASSERT_FALSE(r.ok()) << dict;
    EXPECT_NE(r.error().message.find(expected), std::string::npos) << dict << " -> " << r.error().message;
    EXPECT_EQ(r.error().message.rfind("t.npy: ", 0), 0u) << r.error().message;
  }
  EXPECT_NE(error_of(parse_npy(npy_with_header(good, 7), "t.npy")).find("needs 8 data bytes, the file has 7"),
            std::string::npos);
  EXPECT_NE(error_of(parse_npy(npy_with_header(good, 9), "t.npy")).find("the file has 9"), std::string::npos);
  EXPECT_NE(error_of(parse_npy(as_bytes("\x93NUMPX\x01"), "t.npy")).find("no \\x93NUMPY magic"), std::string::npos);
  EXPECT_NE(error_of(parse_npy(npy_with_header(good, 8, 4), "t.npy")).find("version 4.0"), std::string::npos);
}

// Found by fuzz_npy: an empty Fortran-ordered array reached memcpy with a null destination.
TEST(Npy, EmptyFortranOrderedArrayParses) {
  auto empty = parse_npy(npy_with_header("{'descr': '<f8', 'fortran_order': True, 'shape': (0, 4), }", 0), "e.npy");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(empty->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(empty->numel(), 0);
}

TEST(Npy, AbsurdShapesAreRefusedBeforeAnyAllocation) {
  // 2^40 floats: 4 TiB. Refused from the header alone, with the limit named.
  auto huge = parse_npy(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576)}", 0),
                        "huge.npy");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message.find("over the tensor limit of 1.0 GiB (--max-tensor-bytes)"), std::string::npos)
      << huge.error().message;
  // Dims whose product overflows 64 bits.
  auto overflow = parse_npy(
      npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (288230376151711744, 288230376151711744)}", 0),
      "overflow.npy");
  ASSERT_FALSE(overflow.ok());
  EXPECT_NE(overflow.error().message.find("--max-tensor-bytes"), std::string::npos) << overflow.error().message;
  ArrayLimits small;
  small.max_array_bytes = 16;
  EXPECT_FALSE(parse_npy(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (5,)}", 20), "t", small).ok());
  EXPECT_TRUE(parse_npy(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", 16), "t", small).ok());
}

TEST(Npy, EncodeRoundTripsAndMatchesNumpysHeader) {
  auto numpy_file = testing::read_bytes(arrays_dir() / "f32_2x3.npy");
  auto t = read_npy(arrays_dir() / "f32_2x3.npy").value();
  const std::string ours = encode_npy(t);
  ASSERT_EQ(ours.size(), numpy_file.size());
  EXPECT_EQ(std::memcmp(ours.data(), numpy_file.data(), ours.size()), 0) << ours.substr(0, 128);
  Tensor one(DType::kInt64, {3});
  one.data<int64_t>()[2] = -7;
  auto back = parse_npy(as_bytes(encode_npy(one)), "one");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->shape, one.shape);
  EXPECT_EQ(back->data<int64_t>()[2], -7);
}

TEST(Npz, ReadsStoredAndCompressedArchivesFromNumpy) {
  auto two = read_npz(arrays_dir() / "two_inputs.npz");
  ASSERT_TRUE(two.ok()) << two.error().message;
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].name, "x");
  EXPECT_EQ((*two)[0].value.shape, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ((*two)[1].name, "h0");
  EXPECT_EQ((*two)[1].value.to_float(), (std::vector<float>{1, 1, 1}));
  auto compressed = read_npz(arrays_dir() / "compressed.npz");
  ASSERT_TRUE(compressed.ok()) << compressed.error().message;
  EXPECT_EQ((*compressed)[0].value.to_float(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST(Npz, WriteThenReadAndRefuseBadArchives) {
  const fs::path dir = ::fetafix::testing::temp_dir("npz_write");
  Tensor a(DType::kFloat32, {1, 2});
  a.data<float>()[1] = 3.5f;
  Tensor b(DType::kUInt8, {4});
  for (bool compress : {false, true}) {
    const fs::path p = dir / (compress ? "c.npz" : "s.npz");
    ASSERT_TRUE(write_npz(p, {{"a", a}, {"b", b}}, compress).ok());
    auto back = read_npz(p);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ((*back)[0].value.to_float(), (std::vector<float>{0, 3.5f}));
    EXPECT_EQ((*back)[1].value.dtype, DType::kUInt8);
  }
  { std::ofstream(dir / "junk.npz") << "not a zip"; }
  auto junk = read_npz(dir / "junk.npz");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("junk.npz: not a readable .npz"), std::string::npos) << junk.error().message;
  // An archive whose arrays add up to more than the sample limit is refused from its directory.
  ArrayLimits small;
  small.max_sample_bytes = 100;
  auto big = read_npz(arrays_dir() / "two_inputs.npz", small);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("for one sample file"), std::string::npos) << big.error().message;
}

// The same arrays give the same bytes at any time: every entry carries the fixed DOS time
// 1980-01-01 00:00 (numpy's), not the clock's (the corpus compares its .npz files byte for byte).
TEST(Npz, EntriesCarryAFixedTimestamp) {
  const fs::path dir = ::fetafix::testing::temp_dir("npz_time");
  Tensor a(DType::kFloat32, {3});
  ASSERT_TRUE(write_npz(dir / "t.npz", {{"a", a}, {"b", a}}).ok());
  std::ifstream in(dir / "t.npz", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u16 = [&](size_t at) { return static_cast<unsigned>(static_cast<uint8_t>(bytes[at])) |
                                     static_cast<unsigned>(static_cast<uint8_t>(bytes[at + 1])) << 8; };
  size_t headers = 0;
  for (size_t at = bytes.find("PK\x03\x04"); at != std::string::npos; at = bytes.find("PK\x03\x04", at + 4)) {
    ++headers;
    EXPECT_EQ(u16(at + 10), 0u) << "DOS time of the entry at byte " << at;        // 00:00:00
    EXPECT_EQ(u16(at + 12), (1u << 5) | 1u) << "DOS date of the entry at byte " << at;  // 1980-01-01
  }
  EXPECT_EQ(headers, 2u);
}

}  // namespace fetafix::data
