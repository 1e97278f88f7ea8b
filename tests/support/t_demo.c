#include "support/t_demo.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int t_sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  int rc;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  rc = system(cmd);
  if (rc != 0) {
    fprintf(stderr, "# command failed (%d): %.300s\n", rc, cmd);
  }
  return rc;
}

int t_write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");

  if (!f) {
    return -1;
  }
  fputs(text, f);
  return fclose(f);
}

int t_free_port(void) {
  struct sockaddr_in a;
  socklen_t al = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &al) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) {
    close(fd);
  }
  return port;
}

int t_mpkictl(const char *dir, const char *build, int timeout_s,
              const char *args) {
  return t_sh("cd '%s' && SOFTHSM2_CONF=/nonexistent timeout %d "
              "'%s/mpkictl' --config mpkigw.conf %s >>ctl.log 2>&1",
              dir, timeout_s, build, args);
}

int t_demo_pki(const char *dir, const char *build, const char *csv,
               const char *ap_id, const char *ap_pwd) {
  char omantel[1024];

  snprintf(omantel, sizeof(omantel),
           "  omantel: { ap_id = \"%s\"; ap_pwd = \"%s\"; };\n", ap_id, ap_pwd);
  return t_demo_pki_ops(dir, build, csv, omantel);
}

int t_demo_pki_ops(const char *dir, const char *build, const char *csv,
                   const char *operators_extra) {
  char path[PATH_MAX + 64], text[PATH_MAX + 1024], plan[PATH_MAX + 128];
  char *conf = NULL;
  const char *cwd = getenv("PWD");
  const char *extra = operators_extra ? operators_extra : "";
  int rc;

  snprintf(path, sizeof(path), "%s/tokens", dir);
  if (mkdir(path, 0700) != 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
  snprintf(text, sizeof(text),
           "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
           "log.level = ERROR\nslots.removable = false\n",
           dir);
  if (t_write_text(path, text) != 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/mpkigw.conf", dir);
  plan[0] = '\0';
  if (!strstr(extra, "numbering_plan")) {
    snprintf(plan, sizeof(plan),
             "  numbering_plan = \"%s/configs/numbering-plan.conf\";\n",
             cwd ? cwd : ".");
  }
  if (asprintf(&conf,
               "tls: { certificate = \"none.pem\"; private_key = "
               "\"none.key\"; };\n"
               "log: { level = \"warn\"; };\n"
               "store: { path = \"mpkigw.db\"; };\n"
               "pkcs11: { softhsm_conf = \"softhsm2.conf\"; };\n"
               "pki: { dir = \"pki\"; crl = \"pki/crl.pem\"; };\n"
               "operators: {\n%s%s%s\n};\n",
               plan,
               strstr(extra, "portability") ? "" : "  portability = \"\";\n",
               extra) < 0) {
    return -1;
  }
  rc = t_write_text(path, conf);
  free(conf);
  if (rc != 0) {
    return -1;
  }
  snprintf(path, sizeof(path), "%s/sims.csv", dir);
  if (t_write_text(path, csv) != 0) {
    return -1;
  }
  if (t_mpkictl(dir, build, 120, "ca init") != 0 ||
      t_mpkictl(dir, build, 600, "sim provision --csv sims.csv") != 0) {
    t_sh("tail -n 5 '%s/ctl.log' | sed 's/^/# /' >&2", dir);
    return -1;
  }
  return 0;
}

static int http_ok(int port, const char *path) {
  char cmd[256];

  snprintf(cmd, sizeof(cmd),
           "curl -s -o /dev/null --max-time 1 -f 'http://127.0.0.1:%d%s' "
           "2>/dev/null",
           port, path);
  return system(cmd) == 0;
}

int t_mock_start(const char *dir, const char *build, const char *extra,
                 int *port, pid_t *pid) {
  return t_mock_start_op(dir, build, "omantel", extra, port, pid);
}

int t_mock_start_op(const char *dir, const char *build, const char *op,
                    const char *extra, int *port, pid_t *pid) {
  char conf[PATH_MAX + 32], logp[PATH_MAX + 32], exe[PATH_MAX + 32];
  char suffix[40];
  char *text = NULL;
  int rc;

  /* Omantel keeps the file names t_mock_start always had. */
  suffix[0] = '\0';
  if (strcmp(op, "omantel") != 0) {
    snprintf(suffix, sizeof(suffix), "-%.32s", op);
  }
  *port = t_free_port();
  snprintf(conf, sizeof(conf), "%s/mssp%s.conf", dir,
           suffix[0] ? suffix : "-mock");
  if (asprintf(&text,
               "gateway_config = \"mpkigw.conf\";\n"
               "gateway_ap = true;\n"
               "state_dir = \"mock-state\";\n"
               "%s: { listen = \"127.0.0.1:%d\"; };\n"
               "log: { level = \"warn\"; file = \"mock%s.log\"; access = "
               "false; };\n"
               "application_providers = ( { ap_id = \"http://demo_ap\"; "
               "ap_pwd = \"demo\"; } );\n"
               "%s\n",
               op, *port, suffix, extra ? extra : "") < 0) {
    return -1;
  }
  rc = t_write_text(conf, text);
  free(text);
  if (rc != 0) {
    return -1;
  }
  snprintf(logp, sizeof(logp), "%s/mock%s.out", dir, suffix);
  snprintf(exe, sizeof(exe), "%s/mssp-mock", build);
  *pid = fork();
  if (*pid == 0) {
    int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setenv("SOFTHSM2_CONF", "/nonexistent", 1);
    execl(exe, exe, "--operator", op, "--config", conf, (char *)NULL);
    _exit(127);
  }
  if (*pid < 0) {
    *pid = 0;
    return -1;
  }
  for (int i = 0; i < 200; i++) {
    int st;
    if (http_ok(*port, "/healthz")) {
      return 0;
    }
    if (waitpid(*pid, &st, WNOHANG) == *pid) {
      *pid = 0;
      break;
    }
    usleep(50000);
  }
  t_sh("tail -n 5 '%s' | sed 's/^/# /' >&2", logp);
  return -1;
}

void t_mock_stop(pid_t *pid) {
  int st;

  if (*pid <= 0) {
    return;
  }
  kill(*pid, SIGCONT); /* a test may have stopped it */
  kill(*pid, SIGTERM);
  for (int i = 0; i < 100 && waitpid(*pid, &st, WNOHANG) == 0; i++) {
    usleep(20000);
  }
  if (waitpid(*pid, &st, WNOHANG) == 0) {
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
  }
  *pid = 0;
}
