// X-Auth-Token checking.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

}  // namespace twins
