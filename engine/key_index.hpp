// Finding one key among the many members of an object in constant time, without an
// allocation per key: an open-addressing hash table of positions in the caller's own list
// of keys, which keeps the keys. For objects of thousands of members (a request may hold
// ~17 000); objects of a few members are cheaper to search linearly, so callers index only
// past a threshold.
//
// Not thread-safe; one index per object being read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

namespace twins {

// A hash of a key for KeyIndex, seeded once per process. libstdc++'s std::hash of a string is
// an unseeded Murmur hash: a sender could work out ahead of time a set of keys that all
// collide, and make each lookup probe a long run of slots. With the seed, which keys collide
// cannot be known from outside (equal hashes are still compared by key: they cost time,
// never correctness). Keys are mostly a few bytes long: read in words of 8 bytes (the last
// one overlapping the one before) or less, the length hashed in.
// Drawn when the program (or plugin) is loaded, not at the first hash: read without a guard.
inline const uint64_t kKeyHashSeed = (uint64_t{std::random_device()()} << 32) | std::random_device()();

inline uint64_t KeyHash(std::string_view key) {
  constexpr uint64_t kOdd = 0x9E3779B97F4A7C15ull;
  // A product's high bits depend on all the bits of its factors, its low ones only on theirs:
  // folded down, so that the low bits that choose a slot depend on every byte of the key.
  auto mix = [](uint64_t h, uint64_t word) {
    h = (h ^ word) * kOdd;
    h = (h ^ (h >> 32)) * kOdd;
    return h ^ (h >> 32);
  };
  auto load = [](const char* p, size_t bytes) {
    uint64_t word = 0;
    std::memcpy(&word, p, bytes);  // a fixed size at each call below: one load
    return word;
  };
  auto byte = [](char c) { return uint64_t{static_cast<unsigned char>(c)}; };
  const char* p = key.data();
  const size_t size = key.size();
  const uint64_t h = mix(kKeyHashSeed, size);
  if (size >= 8) {
    uint64_t words = h;
    for (size_t at = 0; at + 8 < size; at += 8) words = mix(words, load(p + at, 8));
    return mix(words, load(p + size - 8, 8));
  }
  if (size >= 4) return mix(h, load(p, 4) | load(p + size - 4, 4) << 32);
  if (size > 0) return mix(h, byte(p[0]) | byte(p[size / 2]) << 8 | byte(p[size - 1]) << 16);
  return h;
}

// Whether two keys are the same bytes. Keys are mostly shorter than a call to memcmp costs:
// compared 8 or 4 bytes at a time (the last word overlapping the one before), inline.
inline bool SameKey(std::string_view a, std::string_view b) {
  const size_t size = a.size();
  if (size != b.size()) return false;
  auto word = [](const char* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  };
  if (size < 8) {
    if (size >= 4) {
      auto half = [](const char* p) {
        uint32_t w;
        std::memcpy(&w, p, 4);
        return w;
      };
      return half(a.data()) == half(b.data()) && half(a.data() + size - 4) == half(b.data() + size - 4);
    }
    for (size_t i = 0; i < size; ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  for (size_t at = 0; at + 8 < size; at += 8) {
    if (word(a.data() + at) != word(b.data() + at)) return false;
  }
  return word(a.data() + size - 8) == word(b.data() + size - 8);
}

class KeyIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // Room for `expected` keys from the start, so that indexing as many does not grow the table.
  explicit KeyIndex(size_t expected = 0) {
    size_t slots = 64;
    while (expected * 4 > slots * 3) slots *= 2;
    if (expected > 0) slots_.resize(slots);
  }

  // Indexes position `at` under `key`, unless a key equal to it is indexed already: then
  // returns that key's position and indexes nothing. key_at(position) gives a position's key.
  template <class KeyAt>
  uint32_t Insert(std::string_view key, uint32_t at, const KeyAt& key_at) {
    if ((count_ + 1) * 4 > slots_.size() * 3) Grow();
    const uint64_t hash = KeyHash(key);
    for (size_t i = hash & Mask();; i = (i + 1) & Mask()) {
      Slot& slot = slots_[i];
      if (slot.at == kNone) {
        slot = {at, static_cast<uint32_t>(hash)};
        ++count_;
        return kNone;
      }
      if (slot.hash == static_cast<uint32_t>(hash) && SameKey(key_at(slot.at), key)) return slot.at;
    }
  }

  // The position indexed under a key equal to `key`, or kNone.
  template <class KeyAt>
  uint32_t Find(std::string_view key, const KeyAt& key_at) const {
    if (count_ == 0) return kNone;
    const uint64_t hash = KeyHash(key);
    for (size_t i = hash & Mask();; i = (i + 1) & Mask()) {
      const Slot& slot = slots_[i];
      if (slot.at == kNone) return kNone;
      if (slot.hash == static_cast<uint32_t>(hash) && SameKey(key_at(slot.at), key)) return slot.at;
    }
  }

  size_t size() const { return count_; }

 private:
  struct Slot {
    uint32_t at = kNone;
    uint32_t hash = 0;  // the key's hash, low bits: probes compare keys only when it matches
  };

  size_t Mask() const { return slots_.size() - 1; }

  // Grows the table (kept at most 3/4 full) fourfold, re-placing positions by their kept hash:
  // the low 32 bits of the hash choose the slot, so tables up to 2^32 slots need no key again.
  // Fourfold rather than twofold: an object of thousands of keys, indexed as it is read
  // without knowing its size, re-places a third of them rather than all of them again.
  void Grow() {
    std::vector<Slot> old(slots_.empty() ? 64 : slots_.size() * 4);
    old.swap(slots_);
    for (const Slot& slot : old) {
      if (slot.at == kNone) continue;
      size_t i = slot.hash & Mask();
      while (slots_[i].at != kNone) i = (i + 1) & Mask();
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace twins
