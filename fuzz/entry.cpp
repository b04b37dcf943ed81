// libFuzzer's entry point for every target: each defines twins::fuzz::FuzzOne.
#include <cstddef>
#include <cstdint>

#include "fuzz/support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  twins::fuzz::FuzzOne(std::string_view(reinterpret_cast<const char*>(bytes), size));
  return 0;
}
