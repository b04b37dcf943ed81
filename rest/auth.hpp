// X-Auth-Token checking, and the tokens file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace twins {

class TokenSet {
 public:
  // With no token, every request is accepted (the server only allows that when asked to).
  explicit TokenSet(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}

  bool anonymous() const { return tokens_.empty(); }
  // Takes the same time whichever byte differs and whichever token matches, so timing
  // reveals neither a token's prefix nor which token was used.
  bool Accepts(std::string_view presented) const;

 private:
  std::vector<std::string> tokens_;
};

// One secret per line; surrounding whitespace, blank lines and lines starting with '#' are
// ignored. A file that cannot be read or holds no secret is an error naming the file.
Result<std::vector<std::string>> ReadTokensFile(const std::string& path);

}  // namespace twins
