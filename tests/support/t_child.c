/* t_child.c — see t_child.h. */
#include "support/t_child.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/t_time.h"

void t_run_child(void (*fn)(void), int limit_s, int *case_failed) {
  double end = t_now_ms() + limit_s * 1000.0;
  int status = 0;
  pid_t pid, w;

  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    printf("#   fork: %s\n", strerror(errno));
    *case_failed = 1;
    return;
  }
  if (pid == 0) {
    *case_failed = 0;
    alarm((unsigned)limit_s + 5);
    fn();
    fflush(stdout);
    /* 3, not 1: sanitizers exit with 1. */
    exit(*case_failed ? 3 : 0);
  }
  while ((w = waitpid(pid, &status, WNOHANG)) == 0 && t_now_ms() < end) {
    t_sleep_ms(10);
  }
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    printf("#   test process killed after %d s (hang)\n", limit_s);
    *case_failed = 1;
  } else if (WIFSIGNALED(status)) {
    printf("#   test process died of signal %d (%s): the in-process server "
           "crashed\n",
           WTERMSIG(status), strsignal(WTERMSIG(status)));
    *case_failed = 1;
  } else if (WEXITSTATUS(status) == 3) {
    *case_failed = 1; /* the child printed its failed checks */
  } else if (WEXITSTATUS(status) != 0) {
    printf("#   test process exited with status %d (sanitizer report on "
           "stderr?)\n",
           WEXITSTATUS(status));
    *case_failed = 1;
  }
}
