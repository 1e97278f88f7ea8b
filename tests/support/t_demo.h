/* t_demo.h — a private demo PKI and the real mock operators, for tests and
 * benchmarks that drive the operator adapters end to end.
 *
 * Everything lives in a directory the caller made (mkdtemp) and removes:
 * softhsm2.conf + tokens/, an mpkigw.conf that mpkictl and the mock read,
 * the CA and SIM tokens made by the real build/mpkictl, and the mock's
 * config, state and logs. Commands run with SOFTHSM2_CONF pointing nowhere:
 * the configs say where the tokens are. */
#ifndef TESTS_SUPPORT_T_DEMO_H
#define TESTS_SUPPORT_T_DEMO_H

#include <sys/types.h>

/* Runs a shell command; on failure writes "# command failed (rc): cmd" to
 * stderr. Returns system()'s status (0 = success). */
int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes |text| to |path| (created or truncated). Returns 0 or -1. */
int t_write_text(const char *path, const char *text);

/* A free TCP port on 127.0.0.1 (0 if none could be found). */
int t_free_port(void);

/* Makes the demo PKI in |dir| with the mpkictl of |build| (absolute): the
 * CA, then every SIM of |csv| (mpkictl's CSV format, header included).
 * The gateway config gives the Omantel adapter |ap_id| / |ap_pwd| and the
 * repository's numbering plan (the current directory is the repository
 * root). Returns 0, or -1 after printing the end of mpkictl's log. */
int t_demo_pki(const char *dir, const char *build, const char *csv,
               const char *ap_id, const char *ap_pwd);

/* The same, with |operators_extra| (may be NULL) written inside the
 * gateway config's `operators: { ... }` group instead of the Omantel AP,
 * e.g. "omantel: { ap_id = ...; ap_pwd = ...; };\n ooredoo: { url =
 * ...; ap_id = ...; ap_pwd = ...; notify_url = ...; notify_secret = ...;
 * };". numbering_plan (the repository's) and portability ("") are written
 * unless |operators_extra| sets them itself. */
int t_demo_pki_ops(const char *dir, const char *build, const char *csv,
                   const char *operators_extra);

/* Runs `mpkictl --config mpkigw.conf ARGS` in |dir|, bounded by
 * |timeout_s|, appending to dir/ctl.log. Returns 0 on success. */
int t_mpkictl(const char *dir, const char *build, int timeout_s,
              const char *args);

/* Starts build/mssp-mock --operator omantel on a free port with the
 * demo's AP (gateway_ap) and the test AP http://demo_ap/demo, plus the
 * config groups in |extra| (e.g. "control: { enabled = true; };"), and
 * waits up to 10 s for /healthz. Stores the port and pid. Returns 0 or -1
 * (printing the end of the mock's output). */
int t_mock_start(const char *dir, const char *build, const char *extra,
                 int *port, pid_t *pid);

/* The same for operator |op| ("omantel" or "ooredoo"): the config names
 * only `<op>: { listen = ...; }`, so |extra| must not hold an <op> group
 * (nor application_providers); it may hold notifications, transactions,
 * control, ... Files: dir/mssp-mock.conf, mock.log, mock.out for omantel
 * (as t_mock_start), dir/mssp-<op>.conf, mock-<op>.log, mock-<op>.out
 * otherwise, so that both mocks can run from one directory; the SIM
 * counters are shared (dir/mock-state). */
int t_mock_start_op(const char *dir, const char *build, const char *op,
                    const char *extra, int *port, pid_t *pid);

/* Stops the mock (SIGCONT + SIGTERM, SIGKILL after 2 s); *pid becomes 0. */
void t_mock_stop(pid_t *pid);

#endif
