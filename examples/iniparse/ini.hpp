// iniparse: a small INI-file parser, the C++ example fuzz target. It has what makes C++ names
// long once demangled: namespaces, classes with constructors, destructors and virtual methods,
// templates (class and member), lambdas, operators and the standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ini {

enum class TokenKind : std::uint8_t { Section, Key, Value, Comment, End, Error };

struct Token {
  TokenKind kind;
  std::string_view text;
  unsigned line;
};

// Splits input into tokens, one line at a time.
class Lexer {
 public:
  explicit Lexer(std::string_view input) : input_(input) {}
  Token next();
  unsigned line() const { return line_; }

 private:
  Token lineToken(std::string_view text);
  std::string_view input_;
  std::size_t pos_ = 0;
  unsigned line_ = 0;
  std::string_view pendingValue_;
  bool hasValue_ = false;
};

// Receives what the parser finds.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void section(std::string_view name) = 0;
  virtual void entry(std::string_view key, std::string_view value) = 0;
  virtual void error(unsigned line, const char *what) = 0;
};

// Counts what it is told (the fuzz target's sink).
class Counter final : public Sink {
 public:
  void section(std::string_view name) override;
  void entry(std::string_view key, std::string_view value) override;
  void error(unsigned line, const char *what) override;
  std::size_t sections = 0, entries = 0, errors = 0;
};

// Sections and their keys, in order.
class Document final : public Sink {
 public:
  Document();
  ~Document() override;
  void section(std::string_view name) override;
  void entry(std::string_view key, std::string_view value) override;
  void error(unsigned line, const char *what) override;

  std::optional<std::string> get(const std::string &section, const std::string &key) const;
  std::vector<std::string> sortedSections() const;
  template <typename T> std::optional<T> getAs(const std::string &section, const std::string &key) const;
  void forEach(const std::function<void(const std::string &, const std::string &, const std::string &)> &fn) const;
  std::size_t size() const;

 private:
  struct Section;
  std::map<std::string, std::unique_ptr<Section>> sections_;
  Section *current_ = nullptr;
  std::vector<std::string> errors_;
};

// Parses tokens into a sink; at most MaxDepth nested section names (a.b.c).
template <typename S, std::size_t MaxDepth>
class Parser {
 public:
  explicit Parser(S &sink) : sink_(sink) {}
  template <typename It> bool feed(It begin, It end);
  std::size_t depth() const { return depth_; }

 private:
  bool sectionName(std::string_view name);
  S &sink_;
  std::size_t depth_ = 0;
};

std::string_view trim(std::string_view s);
bool parseInt(std::string_view s, long &out);
bool parseBool(std::string_view s, bool &out);

template <typename S, std::size_t MaxDepth>
bool Parser<S, MaxDepth>::sectionName(std::string_view name) {
  std::size_t parts = 1;
  for (char c : name) {
    if (c == '.') parts++;
    else if (!(c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  depth_ = parts;
  return parts <= MaxDepth;
}

template <typename S, std::size_t MaxDepth>
template <typename It>
bool Parser<S, MaxDepth>::feed(It begin, It end) {
  std::string_view text(reinterpret_cast<const char *>(&*begin), static_cast<std::size_t>(end - begin));
  if (begin == end) return true;
  Lexer lex(text);
  bool ok = true, inSection = false;
  std::string_view key;
  auto fail = [&](unsigned line, const char *what) {
    sink_.error(line, what);
    ok = false;
  };
  for (Token t = lex.next(); t.kind != TokenKind::End; t = lex.next()) {
    switch (t.kind) {
      case TokenKind::Section:
        if (!sectionName(t.text)) fail(t.line, "bad section name");
        else { sink_.section(t.text); inSection = true; }
        break;
      case TokenKind::Key:
        if (!inSection) fail(t.line, "key outside a section");
        key = t.text;
        break;
      case TokenKind::Value:
        if (inSection) sink_.entry(key, t.text);
        break;
      case TokenKind::Comment:
        break;
      default:
        fail(t.line, "unexpected text");
        break;
    }
  }
  return ok;
}

template <typename T>
std::optional<T> Document::getAs(const std::string &section, const std::string &key) const {
  auto v = get(section, key);
  if (!v) return std::nullopt;
  if constexpr (std::is_same_v<T, long>) {
    long n;
    return parseInt(*v, n) ? std::optional<long>(n) : std::nullopt;
  } else if constexpr (std::is_same_v<T, bool>) {
    bool b;
    return parseBool(*v, b) ? std::optional<bool>(b) : std::nullopt;
  } else {
    return T(*v);
  }
}

}  // namespace ini
