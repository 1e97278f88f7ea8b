/* t_time.h — the clock for tests: deadlines and short sleeps.
 *
 * Every wait in the in-process server tests is bounded; these give the
 * milliseconds to measure and bound it with. */
#ifndef TESTS_SUPPORT_T_TIME_H
#define TESTS_SUPPORT_T_TIME_H

/* Milliseconds on the monotonic clock (CLOCK_MONOTONIC): for deadlines and
 * durations, not for the time of day. */
double t_now_ms(void);

/* Sleeps |ms| milliseconds. */
void t_sleep_ms(int ms);

#endif
