/* t_child.h — running each test in a child process of its own.
 *
 * T_RUN_CHILD(fn) is harness.h's T_RUN for tests that start an in-process
 * server: |fn| runs in a forked child, so that a server crash fails that
 * test alone, LeakSanitizer checks each test's process when it exits, and
 * a test that hangs is killed after 30 s. It prints the same "ok - fn" /
 * "not ok - fn" line as T_RUN.
 *
 * Include harness.h before this header: the macro uses its counters. */
#ifndef TESTS_SUPPORT_T_CHILD_H
#define TESTS_SUPPORT_T_CHILD_H

/* Runs |fn| in a child process and waits for it. |case_failed| is the
 * calling program's t_case_failed (harness.h gives each program its own):
 * the child clears it, runs |fn| and exits 3 if |fn| set it. Sets
 * |*case_failed| when the child failed a check, died of a signal (a crash
 * in the in-process server), exited non-zero otherwise (a sanitizer
 * report) or outlived |limit_s| seconds (it is then killed), and says why
 * on stdout. */
void t_run_child(void (*fn)(void), int limit_s, int *case_failed);

#define T_RUN_CHILD(fn)                                                        \
  do {                                                                         \
    t_case_failed = 0;                                                         \
    t_run_child(fn, 30, &t_case_failed);                                       \
    printf("%s - %s\n", t_case_failed ? "not ok" : "ok", #fn);                 \
    fflush(stdout);                                                            \
    t_failed_total += t_case_failed;                                           \
  } while (0)

#endif
