// A child process for the launch tests: argv run in a process group of its own with
// extra environment variables, stdout and stderr into one file; wait() with a deadline
// (the group is killed when it passes, so a hung job cannot outlive its test).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace loom::test {

class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv,
               const std::vector<std::pair<std::string, std::string>>& env, std::string output_path)
      : output_path_(std::move(output_path)), start_(std::chrono::steady_clock::now()) {
    // Everything the child needs is built first: between fork and exec a child of a
    // multi-threaded process may only make async-signal-safe calls (no malloc).
    std::vector<std::string> environment;
    for (char** e = environ; *e; ++e) {
      const std::string entry(*e);
      bool replaced = false;
      for (const auto& kv : env) replaced = replaced || entry.rfind(kv.first + "=", 0) == 0;
      if (!replaced) environment.push_back(entry);
    }
    for (const auto& [name, value] : env) environment.push_back(name + "=" + value);
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
    args.push_back(nullptr);
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ != 0) return;
    ::setpgid(0, 0);
    const int fd = ::open(output_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  struct Result {
    bool exited = false;  // by exit (else killed by a signal, or timed out)
    int exit_code = -1;
    bool timed_out = false;  // killed by wait()
    double seconds = 0;      // from start to exit
    std::string output;
  };

  // Waits up to timeout_s; past it, kills the whole process group.
  Result wait(double timeout_s) {
    Result r;
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (elapsed() > timeout_s) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        r.timed_out = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.seconds = elapsed();
    r.exited = !r.timed_out && WIFEXITED(status);
    if (r.exited) r.exit_code = WEXITSTATUS(status);
    std::ifstream in(output_path_);
    r.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return r;
  }

 private:
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  std::string output_path_;
  std::chrono::steady_clock::time_point start_;
  pid_t pid_ = -1;
};

}  // namespace loom::test
