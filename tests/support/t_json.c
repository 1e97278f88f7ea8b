/* t_json.c — see t_json.h. */
#include "support/t_json.h"

#include <string.h>

const char *t_jstr(const json_t *j, const char *k) {
  return json_string_value(json_object_get(j, k));
}

const char *t_jpath(const json_t *j, const char *k1, const char *k2) {
  return json_string_value(json_object_get(json_object_get(j, k1), k2));
}

int t_json_is_error(const json_t *j, const char *code) {
  const char *e = t_jstr(j, "error");

  return e && strcmp(e, code) == 0 && t_jstr(j, "message") != NULL;
}
