// Graceful stop on SIGINT / SIGTERM: while a StopSignal exists, the first such signal
// only sets a flag that the training loop reads after each update (it saves a checkpoint
// and returns); the handler is then reset, so a second Ctrl-C ends the process at once.
// The previous handlers come back when the StopSignal is destroyed.
#pragma once

namespace loom::recipes {

class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // The signal received (SIGINT or SIGTERM), or 0.
  int received() const;
  static const char* name(int signal);  // "SIGINT", "SIGTERM"
};

}  // namespace loom::recipes
