#include "model/pickle_rewrite.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace vtb::model {
namespace {

// OrderedDictClass: collections.OrderedDict; Dropped: the same, from a memo entry whose GLOBAL the rewrite
// removed (usable only as the callable of an OrderedDict() that is rewritten too); Dict: an OrderedDict()
// rewritten to {}.
enum class Kind { Other, OrderedDictClass, Dropped, EmptyTuple, Dict };

struct Item {
  size_t start;  // first byte of the opcodes that produced it
  Kind kind;
};

struct Edit {
  size_t begin, end;
  std::string replacement;
};

class Walker {
 public:
  explicit Walker(std::string_view in) : in_(in) {}

  std::string run() {
    if (in_.size() < 2 || static_cast<uint8_t>(in_[0]) != 0x80 || static_cast<uint8_t>(in_[1]) > 2)
      throw PickleError("not a pickle of protocol 2 or lower (torch.save's)");
    pos_ = 2;
    for (;;) {
      const size_t at = pos_;
      const uint8_t op = take(1)[0];
      if (op == '.') break;
      step(op, at);
    }
    return apply();
  }

 private:
  std::string_view take(size_t n) {
    if (n > in_.size() - pos_) throw PickleError("truncated at byte " + std::to_string(pos_));
    const std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint32_t le(size_t n) {
    const std::string_view s = take(n);
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint32_t{static_cast<uint8_t>(s[i])} << (8 * i);
    return v;
  }
  std::string_view line() {
    const size_t end = in_.find('\n', pos_);
    if (end == std::string_view::npos || end - pos_ > 256)
      throw PickleError("bad GLOBAL at byte " + std::to_string(pos_));
    const std::string_view s = in_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  Item pop(size_t at, bool callable = false) {
    if (stack_.size() <= floor()) throw PickleError("stack underflow at byte " + std::to_string(at));
    Item i = stack_.back();
    stack_.pop_back();
    if (i.kind == Kind::Dropped && !callable) throw dropped(at);
    return i;
  }
  static PickleError dropped(size_t at) {
    return PickleError("a value the rewrite removed is used at byte " + std::to_string(at));
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back().first; }
  // Pops to the last MARK; returns the MARK's offset.
  size_t pop_mark(size_t at) {
    if (marks_.empty()) throw PickleError("no MARK for byte " + std::to_string(at));
    const auto [depth, offset] = marks_.back();
    for (size_t i = depth; i < stack_.size(); ++i)
      if (stack_[i].kind == Kind::Dropped) throw dropped(at);
    stack_.resize(depth);
    marks_.pop_back();
    return offset;
  }
  void push(size_t start, Kind kind = Kind::Other) { stack_.push_back({start, kind}); }
  void memo_put(uint32_t key, size_t at) {
    if (stack_.empty()) throw PickleError("BINPUT on an empty stack at byte " + std::to_string(at));
    memo_[key] = stack_.back().kind;
    puts_.emplace_back(at, key);
  }
  void memo_get(uint32_t key, size_t at) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) throw PickleError("memo " + std::to_string(key) + " unset at byte " + std::to_string(at));
    const Kind k = it->second;
    if (dropped_.count(key) == 0)
      push(at, k == Kind::Dict ? Kind::Other : k);  // a dict referenced twice: its BUILD is not dropped
    else if (k == Kind::OrderedDictClass)
      push(at, Kind::Dropped);
    else
      throw dropped(at);
  }
  // The memo entries written in [begin, end) are gone with those bytes.
  void drop_memo(size_t begin, size_t end) {
    for (const auto& [offset, key] : puts_)
      if (offset >= begin && offset < end) dropped_.insert(key);
  }

  void skip_push(size_t n, size_t at) {
    take(n);
    push(at);
  }

  // One opcode: its arguments read, its effect on the stack applied. Protocol-2 opcodes as Python's pickler
  // writes them for dicts, lists, tuples, strings, numbers, globals and torch's persistent storage ids.
  void step(uint8_t op, size_t at) {
    // One line per opcode reads as the table it is:
    // clang-format off
    switch (op) {
      case 0x80: take(1); break;                                // PROTO (again)
      case '(': marks_.emplace_back(stack_.size(), at); break;  // MARK
      case ')': push(at, Kind::EmptyTuple); break;              // EMPTY_TUPLE
      case '}': case ']': case 'N': case 0x88: case 0x89:       // {} [] None True False
        push(at); break;
      case 'J': skip_push(4, at); break;                        // BININT
      case 'K': skip_push(1, at); break;                        // BININT1
      case 'M': skip_push(2, at); break;                        // BININT2
      case 'G': skip_push(8, at); break;                        // BINFLOAT
      case 0x8a: skip_push(le(1), at); break;                   // LONG1
      case 'X': case 'T': skip_push(le(4), at); break;          // BINUNICODE, BINSTRING
      case 'U': case 0x8c: skip_push(le(1), at); break;         // SHORT_BINSTRING, SHORT_BINUNICODE
      case 'c': global(at); break;                              // GLOBAL
      case 'q': memo_put(le(1), at); break;                     // BINPUT
      case 'r': memo_put(le(4), at); break;                     // LONG_BINPUT
      case 'h': memo_get(le(1), at); break;                     // BINGET
      case 'j': memo_get(le(4), at); break;                     // LONG_BINGET
      case 't': case 'l': case 'd': push(pop_mark(at)); break;  // TUPLE, LIST, DICT
      case 'u': case 'e': pop_mark(at); break;                  // SETITEMS, APPENDS (into the item below)
      case 's': pop(at); pop(at); break;                        // SETITEM
      case 'a': case '0': pop(at); break;                       // APPEND, POP
      case 0x85: push(pop(at).start); break;                    // TUPLE1
      case 0x86: pop(at); push(pop(at).start); break;           // TUPLE2
      case 0x87: pop(at); pop(at); push(pop(at).start); break;  // TUPLE3
      case 'Q': push(pop(at).start); break;                     // BINPERSID
      case 'R': case 0x81: reduce(op, at); break;               // REDUCE, NEWOBJ
      case 'b': build(at); break;                               // BUILD
      default:
        throw PickleError("opcode 0x" + hex(op) + " at byte " + std::to_string(at) + " is not one a state dict uses");
    }
    // clang-format on
  }
  void global(size_t at) {
    const std::string_view module = line(), name = line();
    push(at, module == "collections" && name == "OrderedDict" ? Kind::OrderedDictClass : Kind::Other);
  }
  void reduce(uint8_t op, size_t at) {
    const Item args = pop(at);
    const Item callable = pop(at, /*callable=*/true);
    const bool ordered_dict = callable.kind == Kind::OrderedDictClass || callable.kind == Kind::Dropped;
    if (ordered_dict && args.kind == Kind::EmptyTuple && op == 'R') {
      edits_.push_back({callable.start, pos_, "}"});  // OrderedDict() → {}
      drop_memo(callable.start, pos_);
      push(callable.start, Kind::Dict);
    } else if (callable.kind == Kind::Dropped) {
      throw dropped(at);
    } else {
      push(callable.start);
    }
  }
  void build(size_t at) {
    const Item state = pop(at), target = pop(at);
    if (target.kind == Kind::Dict) {  // a dict's attributes (_metadata): dropped with the BUILD
      edits_.push_back({state.start, pos_, ""});
      drop_memo(state.start, pos_);
    }
    push(target.start, target.kind);
  }
  static std::string hex(uint8_t v) {
    const char* digits = "0123456789abcdef";
    return {digits[v >> 4], digits[v & 15]};
  }

  std::string apply() {
    // Edits nest or are disjoint; the outer one of two that begin together comes first.
    std::sort(edits_.begin(), edits_.end(),
              [](const Edit& a, const Edit& b) { return a.begin < b.begin || (a.begin == b.begin && a.end > b.end); });
    std::string out;
    size_t cursor = 0;
    for (const Edit& e : edits_) {
      if (e.begin < cursor) continue;  // inside a range already dropped
      out.append(in_.substr(cursor, e.begin - cursor));
      out += e.replacement;
      cursor = e.end;
    }
    out.append(in_.substr(cursor));
    return out;
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::vector<Item> stack_;
  std::vector<std::pair<size_t, size_t>> marks_;  // (stack depth, offset of the MARK)
  std::map<uint32_t, Kind> memo_;
  std::vector<std::pair<size_t, uint32_t>> puts_;  // (offset, memo key) of every BINPUT
  std::set<uint32_t> dropped_;
  std::vector<Edit> edits_;
};

}  // namespace

std::string plain_dicts(std::string_view pickle) { return Walker(pickle).run(); }

}  // namespace vtb::model
