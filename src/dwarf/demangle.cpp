// Itanium C++ demangling for covd, compiled to WebAssembly by scripts/build-demangler.ts.
//
// The demangler itself is LLVM's own, llvm/Demangle/ItaniumDemangle.h from Debian's
// llvm-14-dev (header only, not copied here): the same parser and printer that
// llvm-symbolizer-14 runs, so names come out exactly as it prints them. This file is only the
// driver around it: a bump allocator for the parser's nodes and a batch entry point, so that
// one call from JavaScript demangles many names.
//
// Protocol (demangle.ts): JavaScript writes names, each ended by a NUL byte, into the buffer
// dm_input(bytes) returns, then calls dm_run(count, bytes). For every name, in order, the
// output (dm_output()) holds one status byte ('1' demangled, '0' left as it was) and, after a
// '1', the demangled text; every entry ends with a NUL. dm_run returns the output's length.
// Names are parsed as llvm::itaniumDemangle does (the caller decides which names to pass:
// llvm-symbolizer only demangles names that begin with _Z or ___Z).

#include "llvm/Demangle/ItaniumDemangle.h"

#include <cstdlib>
#include <cstring>
#include <new>

using llvm::itanium_demangle::ManglingParser;
using llvm::itanium_demangle::Node;

namespace std {
// OutputBuffer calls std::terminate when realloc fails; without exceptions or libc++abi, trap.
[[noreturn]] void terminate() noexcept { __builtin_trap(); }
} // namespace std

// Nodes have virtual destructors, so their deleting destructors name operator delete; the
// arena never deletes a node, but the symbol must exist (no libc++ is linked).
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }

namespace llvm {
namespace itanium_demangle {
// Declared by ItaniumDemangle.h and defined in LLVM's ItaniumDemangle.cpp, which Debian does not
// ship. The Itanium C++ ABI's grammar for a local entity's discriminator:
//   <discriminator> := _ <digit>                   # 0 to 9
//                   := __ <non-negative number> _  # 10 and above
// and, as an extension, a run of digits that ends the name. Returns where parsing goes on:
// past the discriminator, or first when there is none.
const char *parse_discriminator(const char *first, const char *last) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (first == last) return first;
  if (*first == '_') {
    const char *t = first + 1;
    if (t == last) return first;
    if (digit(*t)) return t + 1;
    if (*t != '_') return first;
    ++t;
    while (t != last && digit(*t)) ++t;
    return t != last && *t == '_' ? t + 1 : first;
  }
  if (digit(*first)) {
    const char *t = first + 1;
    while (t != last && digit(*t)) ++t;
    return t == last ? last : first;
  }
  return first;
}
} // namespace itanium_demangle
} // namespace llvm

namespace {

// Nodes for one name live in blocks that are kept between names: reset() rewinds to the first.
class Arena {
  struct Block {
    Block *next;
    size_t size;
  };
  static constexpr size_t kBlock = 64 * 1024;
  Block *first = nullptr;
  Block *current = nullptr;
  size_t used = 0;

  static Block *newBlock(size_t payload) {
    Block *b = static_cast<Block *>(std::malloc(sizeof(Block) + payload));
    if (!b) __builtin_trap();
    b->next = nullptr;
    b->size = payload;
    return b;
  }

public:
  void reset() {
    // Blocks beyond the first were for an unusually large name: give them back.
    if (first) {
      Block *b = first->next;
      while (b) {
        Block *n = b->next;
        std::free(b);
        b = n;
      }
      first->next = nullptr;
    }
    current = first;
    used = 0;
  }

  void *allocate(size_t n) {
    n = (n + 15) & ~size_t(15);
    if (!current) {
      first = current = newBlock(kBlock);
      used = 0;
    }
    if (used + n > current->size) {
      Block *b = newBlock(n > kBlock ? n : kBlock);
      current->next = b;
      current = b;
      used = 0;
    }
    void *p = reinterpret_cast<char *>(current + 1) + used;
    used += n;
    return p;
  }
};

Arena arena;

// The allocator interface AbstractManglingParser expects; every parser shares the one arena.
class NodeAllocator {
public:
  void reset() { arena.reset(); }
  template <typename T, typename... Args> T *makeNode(Args &&...args) {
    return new (arena.allocate(sizeof(T))) T(static_cast<Args &&>(args)...);
  }
  void *allocateNodeArray(size_t count) { return arena.allocate(sizeof(Node *) * count); }
};

using Parser = ManglingParser<NodeAllocator>;

char *inBuf = nullptr;
size_t inCap = 0;
char *outBuf = nullptr;
size_t outCap = 0;
size_t outLen = 0;

void outReserve(size_t more) {
  if (outLen + more <= outCap) return;
  size_t cap = outCap ? outCap : 1 << 16;
  while (cap < outLen + more) cap *= 2;
  outBuf = static_cast<char *>(std::realloc(outBuf, cap));
  if (!outBuf) __builtin_trap();
  outCap = cap;
}

void outBytes(const char *p, size_t n) {
  outReserve(n);
  std::memcpy(outBuf + outLen, p, n);
  outLen += n;
}

// The printer's buffer, kept between names (OutputBuffer grows it with realloc).
char *printBuf = nullptr;
size_t printCap = 0;

} // namespace

extern "C" {

__attribute__((export_name("dm_input"))) char *dm_input(size_t bytes) {
  if (bytes > inCap) {
    std::free(inBuf);
    inBuf = static_cast<char *>(std::malloc(bytes));
    if (!inBuf) __builtin_trap();
    inCap = bytes;
  }
  return inBuf;
}

__attribute__((export_name("dm_output"))) char *dm_output() { return outBuf; }

__attribute__((export_name("dm_run"))) size_t dm_run(size_t count, size_t bytes) {
  outLen = 0;
  const char *p = inBuf, *end = inBuf + bytes;
  for (size_t i = 0; i < count && p < end; i++) {
    const char *nameEnd = static_cast<const char *>(std::memchr(p, 0, size_t(end - p)));
    if (!nameEnd) nameEnd = end;
    // A fresh parser per name, as llvm::itaniumDemangle makes one; the last name's nodes are dropped.
    arena.reset();
    Parser parser(p, nameEnd);
    Node *ast = parser.parse();
    if (!ast) {
      outBytes("0", 2);
    } else {
      if (!printBuf) {
        printCap = 1024;
        printBuf = static_cast<char *>(std::malloc(printCap));
        if (!printBuf) __builtin_trap();
      }
      llvm::itanium_demangle::OutputBuffer ob(printBuf, printCap);
      ast->print(ob);
      printBuf = ob.getBuffer();
      printCap = ob.getBufferCapacity();
      outReserve(ob.getCurrentPosition() + 2);
      outBuf[outLen++] = '1';
      outBytes(printBuf, ob.getCurrentPosition());
      outBuf[outLen++] = 0;
    }
    p = nameEnd + 1;
  }
  return outLen;
}

} // extern "C"
