// Running the g60ledger binary from tests: to completion, or in the background to be
// killed at a chosen moment.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ledger/status.h"

namespace g60::testing {

// A child process; stdout and stderr go to files so nothing can block on a pipe.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& out_path) : out_path_(out_path) {
    pid_ = ::fork();
    G60_ASSERT(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, 0);
      std::vector<char*> argv;
      for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !done_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  void Kill(int sig) { ::kill(pid_, sig); }
  // Waits and returns the exit status (128 + signal when killed).
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    done_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  bool Running() {
    int status = 0;
    if (done_) return false;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      done_ = true;
      return false;
    }
    return true;
  }
  std::string Output() const {
    std::ifstream in(out_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  bool done_ = false;
  std::string out_path_;
};

struct RunResult {
  int status;
  std::string output;
};

inline RunResult Run(const std::vector<std::string>& args, const std::string& out_path) {
  Child c(args, out_path);
  int status = c.Wait();
  return {status, c.Output()};
}

}  // namespace g60::testing
