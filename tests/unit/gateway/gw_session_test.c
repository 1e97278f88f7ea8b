/* gw_session_test.c — the login-session table (gateway/gw_session.c):
 * ids, CSRF, rotation, ending, the idle and absolute timers, families,
 * the cap. */
#include "gw_session.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gw_err.h"
#include "harness.h"

static void t_create_get(void) {
  gw_sessions *s = NULL;
  gw_session_info a, b;
  char id[GW_SESSION_ID_LEN + 1], id2[GW_SESSION_ID_LEN + 1];

  T_ASSERT(gw_sessions_new(&s, 60, 600, 0) == GW_OK);
  T_ASSERT(gw_session_create(s, id, &a) == GW_OK);
  T_EQ_INT(strlen(id), GW_SESSION_ID_LEN);
  T_EQ_INT(strlen(a.csrf), GW_SESSION_ID_LEN);
  T_ASSERT(strcmp(id, a.sid) != 0 && strcmp(id, a.csrf) != 0);
  T_ASSERT(gw_session_get(s, id, &b) == GW_OK && strcmp(a.sid, b.sid) == 0);
  T_ASSERT(gw_session_csrf_ok(&b, a.csrf));
  T_ASSERT(!gw_session_csrf_ok(&b, "x"));
  T_ASSERT(!gw_session_csrf_ok(&b, NULL));
  T_EQ_INT(gw_session_get(s, "nope", &b), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_session_get(s, NULL, &b), GW_ERR_NOT_FOUND);
  /* put keeps sid */
  b.has_req = 1;
  snprintf(b.req.client_id, sizeof(b.req.client_id), "rp");
  snprintf(b.sid, sizeof(b.sid), "forged");
  T_ASSERT(gw_session_put(s, id, &b) == GW_OK);
  T_ASSERT(gw_session_get(s, id, &b) == GW_OK && b.has_req &&
           strcmp(b.sid, a.sid) == 0);
  /* rotation: old id dead, new id alive, new csrf, same sid */
  T_ASSERT(gw_session_rotate(s, id, id2) == GW_OK);
  T_ASSERT(strcmp(id, id2) != 0);
  T_EQ_INT(gw_session_get(s, id, &b), GW_ERR_NOT_FOUND);
  T_ASSERT(gw_session_get(s, id2, &b) == GW_OK && strcmp(b.sid, a.sid) == 0 &&
           strcmp(b.csrf, a.csrf) != 0 && b.has_req);
  /* families by sid */
  for (int i = 0; i < GW_SESSION_MAX_FAMILIES + 2; i++) {
    char f[16];
    snprintf(f, sizeof(f), "fam%d", i);
    T_ASSERT(gw_session_add_family(s, a.sid, f) == GW_OK);
  }
  T_ASSERT(gw_session_get(s, id2, &b) == GW_OK);
  T_EQ_INT(b.nfamilies, GW_SESSION_MAX_FAMILIES);
  T_EQ_STR(b.families[0], "fam2");
  T_EQ_INT(gw_session_add_family(s, "nosuch", "f"), GW_ERR_NOT_FOUND);
  /* end */
  T_EQ_INT(gw_sessions_count(s), 1);
  T_ASSERT(gw_session_end(s, id2, &b) == GW_OK);
  T_EQ_INT(gw_session_get(s, id2, &b), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_session_end(s, id2, NULL), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_sessions_count(s), 0);
  gw_sessions_del(s);
  gw_sessions_del(NULL);
}

static void t_timers(void) {
  gw_sessions *s = NULL;
  gw_session_info b;
  char id[GW_SESSION_ID_LEN + 1], id2[GW_SESSION_ID_LEN + 1];

  /* idle 1 s, absolute 2 s */
  T_ASSERT(gw_sessions_new(&s, 1, 2, 0) == GW_OK);
  T_ASSERT(gw_session_create(s, id, NULL) == GW_OK);
  T_ASSERT(gw_session_create(s, id2, NULL) == GW_OK);
  for (int i = 0; i < 3; i++) { /* kept alive by use ... */
    usleep(600 * 1000);
    T_ASSERT(gw_session_get(s, id, &b) == GW_OK);
  }
  /* ... but not past the absolute limit; the unused one idled out */
  usleep(300 * 1000);
  T_EQ_INT(gw_session_get(s, id, &b), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_session_get(s, id2, &b), GW_ERR_NOT_FOUND);
  T_EQ_INT(gw_sessions_purge(s), 2);
  T_EQ_INT(gw_sessions_count(s), 0);
  gw_sessions_del(s);
}

static void t_cap(void) {
  gw_sessions *s = NULL;
  char id[GW_SESSION_ID_LEN + 1];

  T_EQ_INT(gw_sessions_new(&s, 0, 10, 0), GW_ERR_INVALID);
  T_ASSERT(gw_sessions_new(&s, 60, 600, 2) == GW_OK);
  T_ASSERT(gw_session_create(s, id, NULL) == GW_OK);
  T_ASSERT(gw_session_create(s, id, NULL) == GW_OK);
  T_EQ_INT(gw_session_create(s, id, NULL), GW_ERR_LIMIT);
  gw_sessions_del(s);
}

int main(void) {
  T_RUN(t_create_get);
  T_RUN(t_timers);
  T_RUN(t_cap);
  return T_DONE();
}
