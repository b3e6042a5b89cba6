// libFuzzer entry point for the iniparse example.
// Build: covd cc -std=c++17 -o fuzz_iniparse fuzz_iniparse.cpp lexer.cpp document.cpp
// (or with g++ and no libFuzzer: g++ -std=c++17 -g -O2 *.cpp -o iniparse; run_inputs.cpp gives the main)
#include <cstddef>
#include <cstdint>

#include "ini.hpp"

// Where the result goes, so the parsing cannot be optimised away.
volatile std::size_t iniparse_sink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  // A cheap pass that only counts, then the full document when the input parses.
  ini::Counter counter;
  ini::Parser<ini::Counter, 4> quick(counter);
  if (!quick.feed(data, data + size) || counter.sections == 0) return 0;

  ini::Document doc;
  ini::Parser<ini::Document, 8> full(doc);
  full.feed(data, data + size);
  std::size_t n = doc.size();
  for (const auto &name : doc.sortedSections()) {
    if (auto port = doc.getAs<long>(name, "port"); port && *port > 65535) n++;
    if (auto on = doc.getAs<bool>(name, "enabled"); on && *on) n += 2;
    if (auto path = doc.getAs<std::string>(name, "path"); path && path->size() > 64) n += 3;
  }
  iniparse_sink = n;
  return 0;
}
