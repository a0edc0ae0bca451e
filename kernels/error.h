// Errors for the whole project. loom::Error is for anything a user can cause (shapes,
// dtypes, devices, config keys, files); its message reads
//   <op>: <operands>: <what is wrong>[; <fix>]
// loom::InternalError is a broken invariant inside loom (a bug), with file:line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace loom {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void throw_internal(const char* file, int line, const char* what);

}  // namespace detail
}  // namespace loom

// Throws loom::Error with the streamed arguments as message when cond is false.
#define LOOM_CHECK(cond, ...)                                   \
  do {                                                          \
    if (!(cond)) [[unlikely]]                                   \
      throw ::loom::Error(::loom::detail::cat(__VA_ARGS__));    \
  } while (0)

// Internal invariant, always on: a failure is a bug in loom.
#define LOOM_ASSERT(cond)                                                   \
  do {                                                                      \
    if (!(cond)) [[unlikely]]                                               \
      ::loom::detail::throw_internal(__FILE__, __LINE__, #cond);            \
  } while (0)

#define LOOM_UNREACHABLE(what) ::loom::detail::throw_internal(__FILE__, __LINE__, what)

#ifdef NDEBUG
#define LOOM_DEBUG_ASSERT(cond) ((void)0)
#else
#define LOOM_DEBUG_ASSERT(cond) LOOM_ASSERT(cond)
#endif
